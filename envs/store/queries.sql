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
    expires_at = excluded.expires_at,
    -- An environment brought back after its teardown is a new one: a new life, new data.
    created_at = CASE WHEN environments.status = 'destroyed' THEN excluded.created_at
                      ELSE environments.created_at END;

-- name: delete_environment
DELETE FROM environments WHERE repository = :repository AND pr_number = :pr_number;

-- name: start_operation
INSERT INTO operations (repository, pr_number, kind, actor, head_sha, image, result, started_at,
                        runner)
VALUES (:repository, :pr_number, :kind, :actor, :head_sha, :image, 'running', :started_at,
        :runner)
RETURNING *;

-- name: finish_operation
UPDATE operations SET result = :result, error = :error, reason = :reason,
                      finished_at = :finished_at
WHERE id = :id RETURNING *;

-- name: list_operations
SELECT * FROM operations
WHERE (CAST(:repository AS text) IS NULL OR repository = :repository)
  AND (CAST(:pr_number AS integer) IS NULL OR pr_number = :pr_number)
ORDER BY id DESC LIMIT :limit;

-- name: append_audit
INSERT INTO audit_log (at, actor, action, repository, pr_number, detail, prev_hash, hash)
VALUES (:at, :actor, :action, :repository, :pr_number, :detail, :prev_hash, :hash)
RETURNING *;

-- name: append_audit@postgresql
INSERT INTO audit_log (at, actor, action, repository, pr_number, detail, prev_hash, hash)
VALUES (:at, :actor, :action, :repository, :pr_number, CAST(:detail AS jsonb), :prev_hash, :hash)
RETURNING *;

-- The chain's head; appends are serialised (SQLite: BEGIN IMMEDIATE; PostgreSQL: the lock
-- below) so that no two entries ever link to the same one.
-- name: audit_head
SELECT hash FROM audit_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1;

-- name: lock_audit@postgresql
SELECT pg_advisory_xact_lock(:lock_id);

-- name: lock_audit
SELECT 1;

-- name: audit_chain
SELECT * FROM audit_log WHERE id > :after ORDER BY id LIMIT :limit;

-- name: audit_between
SELECT * FROM audit_log
WHERE id > :after AND at >= :since AND at < :until
  AND (CAST(:repository AS text) IS NULL OR repository = :repository)
  AND (CAST(:pr_number AS integer) IS NULL OR pr_number = :pr_number)
ORDER BY id LIMIT :limit;

-- name: list_audit
SELECT * FROM audit_log
WHERE (CAST(:repository AS text) IS NULL OR repository = :repository)
  AND (CAST(:pr_number AS integer) IS NULL OR pr_number = :pr_number)
ORDER BY id DESC LIMIT :limit;

-- name: record_delivery
INSERT INTO deliveries (delivery_id, event, received_at)
VALUES (:delivery_id, :event, :received_at)
ON CONFLICT (delivery_id) DO NOTHING
RETURNING delivery_id;

-- name: enqueue_job
INSERT INTO jobs (kind, repository, pr_number, payload, status, max_attempts, run_after,
                  delivery_id, created_at, updated_at)
VALUES (:kind, :repository, :pr_number, :payload, 'queued', :max_attempts, :now,
        :delivery_id, :now, :now)
RETURNING *;

-- One round trip for the common case, a delivery that becomes one job: record the
-- delivery, enqueue the job and supersede what it replaces, or nothing if the
-- delivery was seen before.
-- name: accept_single@postgresql
WITH delivery AS (
    INSERT INTO deliveries (delivery_id, event, received_at)
    VALUES (:delivery_id, :event, :now)
    ON CONFLICT (delivery_id) DO NOTHING
    RETURNING delivery_id
), job AS (
    INSERT INTO jobs (kind, repository, pr_number, payload, status, max_attempts, run_after,
                      delivery_id, created_at, updated_at)
    SELECT :kind, :repository, :pr_number, :payload, 'queued', :max_attempts, :now,
           delivery_id, :now, :now
    FROM delivery
    RETURNING *
), superseded AS (
    UPDATE jobs SET status = 'superseded', updated_at = :now,
                    last_error = 'superseded by job ' || CAST((SELECT id FROM job) AS text)
    WHERE repository = :repository AND pr_number = :pr_number AND status = 'queued'
      AND kind = ANY(CAST(:superseded_kinds AS text[])) AND EXISTS (SELECT 1 FROM job)
)
SELECT * FROM job;

-- name: supersede_jobs
UPDATE jobs SET status = 'superseded', updated_at = :now,
                last_error = 'superseded by job ' || CAST(:by_job AS text)
WHERE repository = :repository AND pr_number = :pr_number AND kind = :kind
  AND status = 'queued' AND id < :by_job;

-- The oldest ready job whose environment has no other job under a live lease.
-- A running job whose lease ran out (its worker died) is ready again.
-- name: claim_job
-- Each environment's jobs in order, one at a time; across environments the oldest first,
-- but a started preview's follow-ups (its seed, its report) before anything new: in a
-- burst of opened PRs, each PR is done soon after its own deploy, instead of every PR's
-- last step waiting behind every other PR's deploy.
UPDATE jobs SET status = 'running', lease_owner = :owner, lease_expires_at = :lease_until,
                attempts = attempts + 1, updated_at = :now
WHERE id = (
    SELECT j.id FROM jobs j
    WHERE ((j.status = 'queued' AND j.run_after <= :now)
           OR (j.status = 'running' AND j.lease_expires_at < :now))
      AND NOT EXISTS (
          SELECT 1 FROM jobs busy
          WHERE busy.repository = j.repository AND busy.pr_number = j.pr_number
            AND busy.status = 'running' AND busy.lease_expires_at >= :now AND busy.id <> j.id)
      AND NOT EXISTS (
          SELECT 1 FROM jobs older
          WHERE older.repository = j.repository AND older.pr_number = j.pr_number
            AND older.id < j.id
            AND ((older.status = 'queued' AND older.run_after <= :now)
                 OR (older.status = 'running' AND older.lease_expires_at < :now)))
    ORDER BY CASE WHEN j.kind IN ('seed', 'report') THEN 0 ELSE 1 END, j.id
    LIMIT 1)
RETURNING *;

-- name: claim_job@postgresql
UPDATE jobs SET status = 'running', lease_owner = :owner, lease_expires_at = :lease_until,
                attempts = attempts + 1, updated_at = :now
WHERE id = (
    SELECT j.id FROM jobs j
    WHERE ((j.status = 'queued' AND j.run_after <= :now)
           OR (j.status = 'running' AND j.lease_expires_at < :now))
      AND NOT EXISTS (
          SELECT 1 FROM jobs busy
          WHERE busy.repository = j.repository AND busy.pr_number = j.pr_number
            AND busy.status = 'running' AND busy.lease_expires_at >= :now AND busy.id <> j.id)
      AND NOT EXISTS (
          SELECT 1 FROM jobs older
          WHERE older.repository = j.repository AND older.pr_number = j.pr_number
            AND older.id < j.id
            AND ((older.status = 'queued' AND older.run_after <= :now)
                 OR (older.status = 'running' AND older.lease_expires_at < :now)))
    ORDER BY CASE WHEN j.kind IN ('seed', 'report') THEN 0 ELSE 1 END, j.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: lock_claims@postgresql
SELECT pg_advisory_xact_lock(:lock_id);

-- name: get_job
SELECT * FROM jobs WHERE id = :id;

-- name: extend_lease
UPDATE jobs SET lease_expires_at = :lease_until
WHERE id = :id AND lease_owner = :owner AND status = 'running'
RETURNING id;

-- name: finish_job
UPDATE jobs SET status = :status, last_error = :error, lease_owner = NULL,
                lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND lease_owner = :owner AND status = 'running'
RETURNING *;

-- name: retry_job
UPDATE jobs SET status = 'queued', last_error = :error, lease_owner = NULL,
                lease_expires_at = NULL, run_after = :run_after, updated_at = :now
WHERE id = :id AND lease_owner = :owner AND status = 'running'
RETURNING *;

-- name: list_jobs
SELECT * FROM jobs
WHERE (CAST(:status AS text) IS NULL OR status = :status)
  AND (CAST(:repository AS text) IS NULL OR repository = :repository)
  AND (CAST(:pr_number AS integer) IS NULL OR pr_number = :pr_number)
ORDER BY id DESC LIMIT :limit;

-- name: prune_jobs
DELETE FROM jobs
WHERE status IN ('done', 'failed', 'superseded') AND updated_at < :before
RETURNING id;

-- name: prune_deliveries
DELETE FROM deliveries WHERE received_at < :before RETURNING delivery_id;

-- name: count_jobs
SELECT status, COUNT(*) AS n FROM jobs GROUP BY status;

-- name: oldest_queued_job
SELECT MIN(created_at) AS oldest FROM jobs WHERE status = 'queued';

-- name: save_pull_request
INSERT INTO pull_requests (repository, pr_number, state, head_sha, branch, author, draft, fork,
                           labels, approved_sha, approved_image, head_pushed_at, updated_at)
VALUES (:repository, :pr_number, :state, :head_sha, :branch, :author, :draft, :fork,
        :labels, :approved_sha, :approved_image, :head_pushed_at, :updated_at)
ON CONFLICT (repository, pr_number) DO UPDATE SET
    state = excluded.state, head_sha = excluded.head_sha, branch = excluded.branch,
    author = excluded.author, draft = excluded.draft, fork = excluded.fork,
    labels = excluded.labels, approved_sha = excluded.approved_sha,
    approved_image = excluded.approved_image, head_pushed_at = excluded.head_pushed_at,
    updated_at = excluded.updated_at;

-- name: get_pull_request
SELECT * FROM pull_requests WHERE repository = :repository AND pr_number = :pr_number;

-- name: pull_requests_at_sha
SELECT * FROM pull_requests
WHERE repository = :repository AND head_sha = :head_sha AND state = 'open'
ORDER BY pr_number;

-- name: save_promotion
INSERT INTO promotions (repository, head_sha, image, promoted_by, promoted_at)
VALUES (:repository, :head_sha, :image, :promoted_by, :promoted_at)
ON CONFLICT (repository, head_sha) DO UPDATE SET
    image = excluded.image, promoted_by = excluded.promoted_by,
    promoted_at = excluded.promoted_at;

-- name: get_promotion
SELECT * FROM promotions WHERE repository = :repository AND head_sha = :head_sha;

-- name: get_github_links
SELECT * FROM github_links WHERE repository = :repository AND pr_number = :pr_number;

-- name: save_github_links
INSERT INTO github_links (repository, pr_number, comment_id, deployment_id, deployment_sha,
                          deployment_state, serving_deployment_id)
VALUES (:repository, :pr_number, :comment_id, :deployment_id, :deployment_sha,
        :deployment_state, :serving_deployment_id)
ON CONFLICT (repository, pr_number) DO UPDATE SET
    comment_id = excluded.comment_id, deployment_id = excluded.deployment_id,
    deployment_sha = excluded.deployment_sha, deployment_state = excluded.deployment_state,
    serving_deployment_id = excluded.serving_deployment_id;

-- name: get_github_response
SELECT etag, body FROM github_cache WHERE url = :url;

-- name: save_github_response
INSERT INTO github_cache (url, etag, body) VALUES (:url, :etag, :body)
ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, body = excluded.body;

-- name: save_rate_limit
INSERT INTO github_rate_limits (account, remaining, rate_limit, resets_at, seen_at)
VALUES (:account, :remaining, :rate_limit, :resets_at, :seen_at)
ON CONFLICT (account) DO UPDATE SET remaining = excluded.remaining,
    rate_limit = excluded.rate_limit, resets_at = excluded.resets_at, seen_at = excluded.seen_at
WHERE github_rate_limits.seen_at <= excluded.seen_at;

-- name: list_rate_limits
SELECT * FROM github_rate_limits ORDER BY account;

-- Readiness: the store answers and (SQLite) its file is sound; a query that reads one
-- table can succeed on a file whose other pages are corrupt.
-- name: check_store
PRAGMA quick_check;

-- name: check_store@postgresql
SELECT 'ok' AS quick_check;
