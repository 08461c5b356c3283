-- GitHub responses worth asking for again with If-None-Match (the cleanup cron's open-PR
-- listings): a 304 answer costs no rate limit and means the stored body is still true.
CREATE TABLE github_cache (
    url  TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    body TEXT NOT NULL
);
