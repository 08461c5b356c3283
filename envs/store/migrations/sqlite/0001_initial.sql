-- Environments, the operations journal and the audit trail (SQLite dialect).
-- Timestamps are UTC ISO-8601 text with microseconds, so text order is time order.
CREATE TABLE environments (
    repository  TEXT    NOT NULL,
    pr_number   INTEGER NOT NULL CHECK (pr_number > 0),
    branch      TEXT    NOT NULL,
    namespace   TEXT    NOT NULL UNIQUE,
    stack       TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('provisioning', 'ready', 'failed', 'destroying', 'destroyed')),
    head_sha    TEXT,
    image       TEXT,
    url         TEXT,
    last_error  TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    PRIMARY KEY (repository, pr_number)
);
CREATE INDEX environments_status ON environments (status, expires_at);

CREATE TABLE operations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repository  TEXT    NOT NULL,
    pr_number   INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    head_sha    TEXT,
    image       TEXT,
    result      TEXT    NOT NULL CHECK (result IN ('running', 'succeeded', 'failed')),
    error       TEXT,
    started_at  TEXT    NOT NULL,
    finished_at TEXT
);
CREATE INDEX operations_environment ON operations (repository, pr_number, id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    repository  TEXT,
    pr_number   INTEGER,
    detail      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_environment ON audit_log (repository, pr_number, id);
