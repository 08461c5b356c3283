"""Domain records: environments, the operations journal and the audit trail.

Frozen dataclasses that cross every boundary (store, lifecycle, CLI). Times
are always timezone-aware UTC; a naive datetime is a bug and is refused.

Environment status, the state machine drawn in docs/architecture.md::

    (none) --up--> PROVISIONING --ok--> READY --up--> PROVISIONING
                        |                 |
                        +--error--> FAILED --up--> PROVISIONING
    READY / FAILED / PROVISIONING --down--> DESTROYING --ok--> DESTROYED
                                               +--error--> FAILED (retried by gc)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EnvironmentStatus(StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    FAILED = "failed"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"

    @property
    def is_live(self) -> bool:
        """True while resources may exist in the cluster."""
        return self is not EnvironmentStatus.DESTROYED


class OperationKind(StrEnum):
    UP = "up"
    DOWN = "down"
    RESEED = "reseed"
    EXTEND = "extend"
    REFRESH = "refresh"


class OperationResult(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class FailureReason(StrEnum):
    """Why an operation failed, in few enough words to be a metric label and a filter."""

    ROLLOUT = "rollout"  # the new version cannot roll out (crash, pull refused, deadline)
    LOCKED = "locked"  # another update holds the stack
    CLUSTER = "cluster_unreachable"  # no usable kubeconfig, or the API server did not answer
    ENGINE = "engine"  # any other failure of the Pulumi update
    SEED_CONFIG = "seed_config"  # the spec's seeding is wrong (recipe, rules, source)
    SEED = "seed"  # seeding ran and failed
    ABANDONED = "abandoned"  # the process running it died (closed by gc or the next worker)


# GitHub's shapes for a repository (OWNER/NAME) and a full commit SHA; checked at every edge.
REPOSITORY = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


def require_aware(value: datetime, what: str) -> datetime:
    """Refuse naive datetimes: a TTL computed in local time is an outage."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def parse_time(value: Any) -> datetime | None:
    """A stored timestamp (ISO text from SQLite, datetime from PostgreSQL) as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return require_aware(value, "stored timestamp")
    return require_aware(datetime.fromisoformat(str(value)), "stored timestamp")


@dataclass(frozen=True)
class EnvironmentKey:
    """An environment is one pull request of one repository."""

    repository: str
    pr_number: int

    def __str__(self) -> str:
        return f"{self.repository}#{self.pr_number}"


@dataclass(frozen=True)
class Environment:
    repository: str
    pr_number: int
    branch: str
    namespace: str
    stack: str
    status: EnvironmentStatus
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    head_sha: str | None = None
    image: str | None = None
    url: str | None = None
    last_error: str | None = None

    def __post_init__(self) -> None:
        for name in ("created_at", "updated_at", "expires_at"):
            object.__setattr__(self, name, require_aware(getattr(self, name), name))

    @property
    def key(self) -> EnvironmentKey:
        return EnvironmentKey(self.repository, self.pr_number)

    def with_changes(self, **changes: Any) -> Environment:
        return replace(self, **changes)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Environment:
        return cls(
            repository=row["repository"],
            pr_number=int(row["pr_number"]),
            branch=row["branch"],
            namespace=row["namespace"],
            stack=row["stack"],
            status=EnvironmentStatus(row["status"]),
            created_at=required_time(row["created_at"]),
            updated_at=required_time(row["updated_at"]),
            expires_at=required_time(row["expires_at"]),
            head_sha=row["head_sha"],
            image=row["image"],
            url=row["url"],
            last_error=row["last_error"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "pr_number": self.pr_number,
            "branch": self.branch,
            "namespace": self.namespace,
            "stack": self.stack,
            "status": self.status.value,
            "head_sha": self.head_sha,
            "image": self.image,
            "url": self.url,
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def required_time(value: Any) -> datetime:
    """A stored timestamp from a NOT NULL column, as UTC."""
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError("required timestamp is NULL")
    return parsed


@dataclass(frozen=True)
class Operation:
    """One lifecycle operation in the journal: who asked what, for which SHA."""

    id: int
    repository: str
    pr_number: int
    kind: OperationKind
    actor: str
    started_at: datetime
    result: OperationResult
    head_sha: str | None = None
    image: str | None = None
    finished_at: datetime | None = None
    error: str | None = None
    runner: str | None = None  # "job:<id>" when a worker ran it; None from the CLI or gc
    reason: FailureReason | None = None  # set when it failed

    @property
    def job_id(self) -> int | None:
        if self.runner and self.runner.startswith("job:") and self.runner[4:].isdigit():
            return int(self.runner[4:])
        return None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Operation:
        return cls(
            id=int(row["id"]),
            repository=row["repository"],
            pr_number=int(row["pr_number"]),
            kind=OperationKind(row["kind"]),
            actor=row["actor"],
            started_at=required_time(row["started_at"]),
            result=OperationResult(row["result"]),
            head_sha=row["head_sha"],
            image=row["image"],
            finished_at=parse_time(row["finished_at"]),
            error=row["error"],
            runner=row.get("runner"),
            reason=FailureReason(row["reason"]) if row.get("reason") else None,
        )

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "repository": self.repository,
            "pr_number": self.pr_number,
            "kind": self.kind.value,
            "actor": self.actor,
            "head_sha": self.head_sha,
            "image": self.image,
            "result": self.result.value,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": self.duration_s,
            "runner": self.runner,
            "reason": self.reason.value if self.reason else None,
        }


@dataclass(frozen=True)
class AuditEntry:
    """Something that happened, for an auditor: append-only, never edited."""

    id: int
    at: datetime
    actor: str
    action: str
    repository: str | None = None
    pr_number: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    # Its link in the hash chain (envs.core.audit_chain); None on entries written before it.
    prev_hash: str | None = None
    hash: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], detail: Mapping[str, Any]) -> AuditEntry:
        return cls(
            id=int(row["id"]),
            at=required_time(row["at"]),
            actor=row["actor"],
            action=row["action"],
            repository=row["repository"],
            pr_number=None if row["pr_number"] is None else int(row["pr_number"]),
            detail=detail,
            prev_hash=row.get("prev_hash"),
            hash=row.get("hash"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "repository": self.repository,
            "pr_number": self.pr_number,
            "detail": dict(self.detail),
            "hash": self.hash,
        }
