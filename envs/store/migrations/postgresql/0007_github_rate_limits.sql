-- GitHub's primary rate limit per account as the workers last saw it (response headers), so
-- that any replica's /metrics reports it: workers have no endpoint of their own.
CREATE TABLE github_rate_limits (
    account    text    PRIMARY KEY,
    remaining  integer NOT NULL,
    rate_limit integer NOT NULL,
    resets_at  timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);
