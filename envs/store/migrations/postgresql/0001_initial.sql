-- Environments, the operations journal and the audit trail (PostgreSQL dialect).
CREATE TABLE environments (
    repository  text        NOT NULL,
    pr_number   integer     NOT NULL CHECK (pr_number > 0),
    branch      text        NOT NULL,
    namespace   text        NOT NULL UNIQUE,
    stack       text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('provisioning', 'ready', 'failed', 'destroying', 'destroyed')),
    head_sha    text,
    image       text,
    url         text,
    last_error  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (repository, pr_number)
);
CREATE INDEX environments_status ON environments (status, expires_at);

CREATE TABLE operations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository  text        NOT NULL,
    pr_number   integer     NOT NULL,
    kind        text        NOT NULL,
    actor       text        NOT NULL,
    head_sha    text,
    image       text,
    result      text        NOT NULL CHECK (result IN ('running', 'succeeded', 'failed')),
    error       text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX operations_environment ON operations (repository, pr_number, id);

CREATE TABLE audit_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    repository  text,
    pr_number   integer,
    detail      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_environment ON audit_log (repository, pr_number, id);
