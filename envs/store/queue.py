"""The durable job queue and the webhook delivery ledger, in the state store.

Jobs are leased, not popped: a worker that dies holding one (SIGKILL, node
loss) simply stops renewing its lease, and the job is claimable again once
the lease runs out. Only the lease holder can finish a job, so a worker
that lost its lease cannot overwrite the result of the one that took over.

One job at a time per environment: the claim skips every job whose
(repository, PR) already has a job under a live lease. On PostgreSQL the
candidate row is taken ``FOR UPDATE SKIP LOCKED`` and claims are serialised
by a transaction-scoped advisory lock, because SKIP LOCKED alone cannot stop
two replicas from each claiming a *different* job of the same environment
in the same instant. Claims take milliseconds, so the serialisation costs
nothing next to the work they hand out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from envs.core.jobs import SUPERSEDES, Job, JobKind, JobStatus, NewJob
from envs.core.model import parse_time, require_aware
from envs.store.connector import Connector, Row

_CLAIM_LOCK = 0x6A6F6273  # arbitrary constant shared by every replica


def _job(row: Row) -> Job:
    payload = row["payload"]
    return Job.from_row(row, json.loads(payload) if isinstance(payload, str) else payload)


class JobQueue:
    def __init__(self, connector: Connector) -> None:
        self._db = connector

    def record_delivery(self, delivery_id: str, event: str, at: datetime) -> bool:
        """Remember a webhook delivery; False if it was seen before (a redelivery)."""
        rows = self._db.fetch(
            "record_delivery",
            {"delivery_id": delivery_id, "event": event, "received_at": require_aware(at, "at")},
        )
        return bool(rows)

    def accept_delivery(
        self, delivery_id: str, event: str, jobs: Iterable[NewJob], at: datetime
    ) -> list[Job] | None:
        """Record a delivery and enqueue its jobs atomically; None for a duplicate."""
        jobs = list(jobs)
        if len(jobs) == 1 and self._db.dialect == "postgresql":
            return self._accept_single(delivery_id, event, jobs[0], at)
        with self._db.transaction():
            if not self.record_delivery(delivery_id, event, at):
                return None
            return [self.enqueue(replace(job, delivery_id=delivery_id), at) for job in jobs]

    def _accept_single(
        self, delivery_id: str, event: str, job: NewJob, at: datetime
    ) -> list[Job] | None:
        rows = self._db.fetch(
            "accept_single",
            {
                "delivery_id": delivery_id,
                "event": event,
                "kind": job.kind.value,
                "repository": job.repository,
                "pr_number": job.pr_number,
                "payload": json.dumps(dict(job.payload), sort_keys=True),
                "max_attempts": job.attempts_allowed,
                "superseded_kinds": sorted(k.value for k in SUPERSEDES.get(job.kind, ())),
                "now": require_aware(at, "at"),
            },
        )
        return [_job(rows[0])] if rows else None

    def enqueue(self, job: NewJob, at: datetime) -> Job:
        """Add a job, superseding the queued ones it makes pointless (same PR)."""
        now = require_aware(at, "at")
        with self._db.transaction():
            rows = self._db.fetch(
                "enqueue_job",
                {
                    "kind": job.kind.value,
                    "repository": job.repository,
                    "pr_number": job.pr_number,
                    "payload": json.dumps(dict(job.payload), sort_keys=True),
                    "max_attempts": job.attempts_allowed,
                    "delivery_id": job.delivery_id,
                    "now": now,
                },
            )
            created = _job(rows[0])
            for kind in sorted(SUPERSEDES.get(job.kind, ())):
                self._db.fetch(
                    "supersede_jobs",
                    {
                        "repository": job.repository,
                        "pr_number": job.pr_number,
                        "kind": kind.value,
                        "by_job": created.id,
                        "now": now,
                    },
                )
        return created

    def claim(self, owner: str, at: datetime, lease: timedelta) -> Job | None:
        """Lease the oldest ready job of an idle environment, or None."""
        now = require_aware(at, "at")
        params = {"owner": owner, "now": now, "lease_until": now + lease}
        with self._db.transaction():
            if self._db.dialect == "postgresql":
                self._db.fetch("lock_claims", {"lock_id": _CLAIM_LOCK})
            rows = self._db.fetch("claim_job", params)
        return _job(rows[0]) if rows else None

    def get(self, job_id: int) -> Job | None:
        rows = self._db.fetch("get_job", {"id": job_id})
        return _job(rows[0]) if rows else None

    def heartbeat(self, job: Job, owner: str, at: datetime, lease: timedelta) -> bool:
        """Extend the lease; False means it was lost and the work must stop."""
        rows = self._db.fetch(
            "extend_lease",
            {"id": job.id, "owner": owner, "lease_until": require_aware(at, "at") + lease},
        )
        return bool(rows)

    def finish(
        self, job: Job, owner: str, status: JobStatus, at: datetime, error: str | None = None
    ) -> Job | None:
        """Mark done or failed; None if the lease had been lost (another worker has it)."""
        if status not in (JobStatus.DONE, JobStatus.FAILED):
            raise ValueError(f"cannot finish a job as {status}")
        rows = self._db.fetch(
            "finish_job",
            {
                "id": job.id,
                "owner": owner,
                "status": status.value,
                "error": error,
                "now": require_aware(at, "at"),
            },
        )
        return _job(rows[0]) if rows else None

    def retry(
        self, job: Job, owner: str, at: datetime, run_after: datetime, error: str
    ) -> Job | None:
        rows = self._db.fetch(
            "retry_job",
            {
                "id": job.id,
                "owner": owner,
                "error": error,
                "run_after": require_aware(run_after, "run_after"),
                "now": require_aware(at, "at"),
            },
        )
        return _job(rows[0]) if rows else None

    def jobs(
        self,
        status: JobStatus | None = None,
        repository: str | None = None,
        pr_number: int | None = None,
        limit: int = 100,
    ) -> list[Job]:
        rows = self._db.fetch(
            "list_jobs",
            {
                "status": status.value if status else None,
                "repository": repository,
                "pr_number": pr_number,
                "limit": limit,
            },
        )
        return [_job(row) for row in rows]

    def prune(self, before: datetime) -> tuple[int, int]:
        """Forget finished jobs and deliveries older than ``before``: (jobs, deliveries).

        Queued and running jobs are never pruned. A delivery GitHub redelivers
        after its record is pruned would be queued again, so keep deliveries
        well beyond the redelivery window (gc keeps 30 days by default).
        """
        at = {"before": require_aware(before, "before")}
        with self._db.transaction():
            jobs = len(self._db.fetch("prune_jobs", at))
            deliveries = len(self._db.fetch("prune_deliveries", at))
        return jobs, deliveries

    def counts(self) -> Mapping[JobStatus, int]:
        found = {
            JobStatus(row["status"]): int(row["n"]) for row in self._db.fetch("count_jobs", {})
        }
        return {status: found.get(status, 0) for status in JobStatus}

    def oldest_queued(self) -> datetime | None:
        """When the longest-waiting queued job was queued (None: the queue is empty)."""
        rows = self._db.fetch("oldest_queued_job", {})
        return parse_time(rows[0]["oldest"]) if rows else None

    def kinds_pending(self, repository: str, pr_number: int) -> set[JobKind]:
        return {
            job.kind
            for job in self.jobs(repository=repository, pr_number=pr_number, limit=1000)
            if job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        }
