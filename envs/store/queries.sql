-- Named queries shared by both backends. Parameters are written :name; the
-- PostgreSQL connector rewrites them to psycopg's %(name)s. A query that
-- needs a dialect of its own is named "name@postgresql" or "name@sqlite".

-- name: get_environment
SELECT * FROM environments WHERE repository = :repository AND pr_number = :pr_number;

-- name: get_environment_by_namespace
SELECT * FROM environments WHERE namespace = :namespace;

-- name: list_environments
SELECT * FROM environments ORDER BY repository, pr_number;

-- name: save_environment
INSERT INTO environments (repository, pr_number, branch, namespace, stack, status, head_sha,
                          image, url, last_error, created_at, updated_at, expires_at)
VALUES (:repository, :pr_number, :branch, :namespace, :stack, :status, :head_sha,
        :image, :url, :last_error, :created_at, :updated_at, :expires_at)
ON CONFLICT (repository, pr_number) DO UPDATE SET
    branch = excluded.branch, namespace = excluded.namespace, stack = excluded.stack,
    status = excluded.status, head_sha = excluded.head_sha, image = excluded.image,
    url = excluded.url, last_error = excluded.last_error, updated_at = excluded.updated_at,
    expires_at = excluded.expires_at;

-- name: delete_environment
DELETE FROM environments WHERE repository = :repository AND pr_number = :pr_number;

-- name: start_operation
INSERT INTO operations (repository, pr_number, kind, actor, head_sha, image, result, started_at)
VALUES (:repository, :pr_number, :kind, :actor, :head_sha, :image, 'running', :started_at)
RETURNING *;

-- name: finish_operation
UPDATE operations SET result = :result, error = :error, finished_at = :finished_at
WHERE id = :id RETURNING *;

-- name: list_operations
SELECT * FROM operations
WHERE (CAST(:repository AS text) IS NULL OR repository = :repository)
  AND (CAST(:pr_number AS integer) IS NULL OR pr_number = :pr_number)
ORDER BY id DESC LIMIT :limit;

-- name: append_audit
INSERT INTO audit_log (at, actor, action, repository, pr_number, detail)
VALUES (:at, :actor, :action, :repository, :pr_number, :detail)
RETURNING *;

-- name: append_audit@postgresql
INSERT INTO audit_log (at, actor, action, repository, pr_number, detail)
VALUES (:at, :actor, :action, :repository, :pr_number, CAST(:detail AS jsonb))
RETURNING *;

-- name: list_audit
SELECT * FROM audit_log
WHERE (CAST(:repository AS text) IS NULL OR repository = :repository)
  AND (CAST(:pr_number AS integer) IS NULL OR pr_number = :pr_number)
ORDER BY id DESC LIMIT :limit;
