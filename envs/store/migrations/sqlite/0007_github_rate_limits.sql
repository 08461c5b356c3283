-- GitHub's primary rate limit per account as the workers last saw it (response headers), so
-- that any replica's /metrics reports it: workers have no endpoint of their own.
CREATE TABLE github_rate_limits (
    account    TEXT    PRIMARY KEY,
    remaining  INTEGER NOT NULL,
    rate_limit INTEGER NOT NULL,
    resets_at  TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);
