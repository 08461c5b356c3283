-- The GitHub side: deliveries (dedupe), the job queue, what we know of each PR,
-- promoted images, and the GitHub objects we keep editing (PostgreSQL dialect).
CREATE TABLE deliveries (
    delivery_id text        PRIMARY KEY,
    event       text        NOT NULL,
    received_at timestamptz NOT NULL
);

CREATE TABLE jobs (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    repository       text        NOT NULL,
    pr_number        integer     NOT NULL DEFAULT 0,
    payload          text        NOT NULL DEFAULT '{}',  -- text: jsonb refuses \u0000
    status           text        NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'superseded')),
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL,
    run_after        timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    delivery_id      text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, run_after, id);
CREATE INDEX jobs_environment ON jobs (repository, pr_number, status);

CREATE TABLE pull_requests (
    repository   text        NOT NULL,
    pr_number    integer     NOT NULL,
    state        text        NOT NULL,
    head_sha     text        NOT NULL,
    branch       text        NOT NULL,
    author       text        NOT NULL,
    draft        boolean     NOT NULL,
    fork         boolean     NOT NULL,
    labels       text        NOT NULL DEFAULT '[]',
    approved_sha text,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (repository, pr_number)
);
CREATE INDEX pull_requests_head ON pull_requests (repository, head_sha);

CREATE TABLE promotions (
    repository  text        NOT NULL,
    head_sha    text        NOT NULL,
    image       text        NOT NULL,
    promoted_by text        NOT NULL,
    promoted_at timestamptz NOT NULL,
    PRIMARY KEY (repository, head_sha)
);

CREATE TABLE github_links (
    repository     text    NOT NULL,
    pr_number      integer NOT NULL,
    comment_id     bigint,
    deployment_id  bigint,
    deployment_sha text,
    deployment_state text,
    serving_deployment_id bigint,
    PRIMARY KEY (repository, pr_number)
);
