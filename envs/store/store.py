"""The state store: environments, operations journal, audit trail.

One interface over two real backends (SQLite embedded, PostgreSQL for
replicas), chosen by URL in :func:`open_store`. Rows become frozen domain
objects here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from envs.core.audit_chain import GENESIS, link
from envs.core.errors import ConfigError, NotFound
from envs.core.jobs import Job, JobKind, NewJob, Promotion
from envs.core.model import (
    AuditEntry,
    Environment,
    EnvironmentKey,
    EnvironmentStatus,
    FailureReason,
    Operation,
    OperationKind,
    OperationResult,
    require_aware,
)
from envs.core.payloads import Promote
from envs.store.connector import Connector, UniqueViolation
from envs.store.github_cache import GitHubResponses
from envs.store.pull_requests import PullRequestState
from envs.store.queue import JobQueue

_AUDIT_LOCK = 0x61756474  # serialises appends to the audit chain across replicas


class StoreUnsound(Exception):
    """The state store answered, but its storage is damaged (SQLite's quick_check)."""


class NamespaceTaken(ConfigError):
    """Two environments derived the same namespace (repositories sharing a cluster)."""


def migration_scripts(dialect: str) -> list[tuple[int, str]]:
    """(version, sql) for every migration file of a dialect, e.g. 0001_initial.sql."""
    folder = resources.files("envs.store").joinpath("migrations", dialect)
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(scripts)


class Store:
    """Typed access to the state; every method is one short transaction."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector
        self.applied_migrations = connector.migrate(migration_scripts(connector.dialect))
        self.queue = JobQueue(connector)
        self.pull_requests = PullRequestState(connector)
        self.github_cache = GitHubResponses(connector)

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def close(self) -> None:
        self._db.close()

    def promote(self, promotion: Promotion) -> Job:
        """Record CI's image for a commit and queue the re-check of the PRs at it, atomically."""
        job = NewJob(
            JobKind.PROMOTE,
            promotion.repository,
            payload=Promote(head_sha=promotion.head_sha, source="promote").dump(),
        )
        with self._db.transaction():
            self.pull_requests.promote(promotion)
            return self.queue.enqueue(job, promotion.promoted_at)

    def transaction(self) -> AbstractContextManager[None]:
        """Group several calls (of any part of the store) into one transaction."""
        return self._db.transaction()

    # -- environments -------------------------------------------------------

    def get(self, key: EnvironmentKey) -> Environment | None:
        rows = self._db.fetch(
            "get_environment", {"repository": key.repository, "pr_number": key.pr_number}
        )
        return Environment.from_row(rows[0]) if rows else None

    def require(self, key: EnvironmentKey) -> Environment:
        found = self.get(key)
        if found is None:
            raise NotFound(f"no environment for {key}")
        return found

    def by_namespace(self, namespace: str) -> Environment | None:
        rows = self._db.fetch("get_environment_by_namespace", {"namespace": namespace})
        return Environment.from_row(rows[0]) if rows else None

    def environments(
        self,
        statuses: Iterable[EnvironmentStatus] | None = None,
        repository: str | None = None,
    ) -> list[Environment]:
        wanted = set(statuses) if statuses is not None else None
        return [
            env
            for env in map(Environment.from_row, self._db.fetch("list_environments", {}))
            if (wanted is None or env.status in wanted)
            and (repository is None or env.repository == repository)
        ]

    def save(self, env: Environment) -> Environment:
        """Insert or update; refuses a namespace another environment holds."""
        params: dict[str, Any] = env.to_json() | {
            "created_at": env.created_at,
            "updated_at": env.updated_at,
            "expires_at": env.expires_at,
        }
        with self._db.transaction():
            holder = self.by_namespace(env.namespace)
            if holder is not None and holder.key != env.key:
                raise NamespaceTaken(
                    f"namespace {env.namespace!r} for {env.key} is already used by {holder.key}; "
                    "give one repository a 'naming.prefix' in its spec"
                )
            try:
                self._db.fetch("save_environment", params)
            except UniqueViolation as exc:  # a concurrent writer won the race
                raise NamespaceTaken(f"namespace {env.namespace!r} is already in use") from exc
        return env

    def delete(self, key: EnvironmentKey) -> None:
        self._db.fetch(
            "delete_environment", {"repository": key.repository, "pr_number": key.pr_number}
        )

    # -- operations journal ---------------------------------------------------

    def start_operation(
        self,
        key: EnvironmentKey,
        kind: OperationKind,
        actor: str,
        at: datetime,
        head_sha: str | None = None,
        image: str | None = None,
        runner: str | None = None,
    ) -> Operation:
        rows = self._db.fetch(
            "start_operation",
            {
                "repository": key.repository,
                "pr_number": key.pr_number,
                "kind": kind.value,
                "actor": actor,
                "head_sha": head_sha,
                "image": image,
                "started_at": require_aware(at, "started_at"),
                "runner": runner,
            },
        )
        return Operation.from_row(rows[0])

    def finish_operation(
        self,
        operation: Operation,
        result: OperationResult,
        at: datetime,
        error: str | None = None,
        reason: FailureReason | None = None,
    ) -> Operation:
        rows = self._db.fetch(
            "finish_operation",
            {
                "id": operation.id,
                "result": result.value,
                "error": error,
                "reason": reason.value if reason else None,
                "finished_at": require_aware(at, "finished_at"),
            },
        )
        if not rows:
            raise NotFound(f"no operation with id {operation.id}")
        return Operation.from_row(rows[0])

    def operations(
        self, repository: str | None = None, pr_number: int | None = None, limit: int = 100
    ) -> list[Operation]:
        rows = self._db.fetch(
            "list_operations", {"repository": repository, "pr_number": pr_number, "limit": limit}
        )
        return [Operation.from_row(row) for row in rows]

    # -- audit trail ------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`StoreUnsound` unless the store answers and its storage is sound."""
        said = [str(next(iter(row.values()))) for row in self._db.fetch("check_store", {})]
        if said != ["ok"]:
            raise StoreUnsound("; ".join(said)[:500])

    def audit(
        self,
        actor: str,
        action: str,
        at: datetime,
        key: EnvironmentKey | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append an entry, linked to the one before it (:mod:`envs.core.audit_chain`)."""
        at = require_aware(at, "at")
        repository = key.repository if key else None
        pr_number = key.pr_number if key else None
        # Through JSON and back: the hash covers exactly what a reader will get back.
        content = json.loads(json.dumps(dict(detail or {}), sort_keys=True))
        with self._db.transaction():
            self._db.fetch("lock_audit", {"lock_id": _AUDIT_LOCK})
            head = self._db.fetch("audit_head", {})
            prev = str(head[0]["hash"]) if head else GENESIS
            rows = self._db.fetch(
                "append_audit",
                {
                    "at": at,
                    "actor": actor,
                    "action": action,
                    "repository": repository,
                    "pr_number": pr_number,
                    "detail": json.dumps(content, sort_keys=True),
                    "prev_hash": prev,
                    "hash": link(prev, at, actor, action, repository, pr_number, content),
                },
            )
        return _audit_from_row(rows[0])

    def audit_chain(self, batch: int = 5000) -> Iterator[AuditEntry]:
        """Every audit entry, oldest first, read in batches (for ``audit verify``)."""
        return self._audit_pages("audit_chain", {}, batch)

    def audit_between(
        self,
        since: datetime,
        until: datetime,
        repository: str | None = None,
        pr_number: int | None = None,
        batch: int = 5000,
    ) -> Iterator[AuditEntry]:
        """Entries with ``since <= at < until``, oldest first, read in batches (for export)."""
        bounds = {
            "since": require_aware(since, "since"),
            "until": require_aware(until, "until"),
            "repository": repository,
            "pr_number": pr_number,
        }
        return self._audit_pages("audit_between", bounds, batch)

    def _audit_pages(
        self, query: str, params: Mapping[str, Any], batch: int
    ) -> Iterator[AuditEntry]:
        after = 0
        while True:
            rows = self._db.fetch(query, {**params, "after": after, "limit": batch})
            for row in rows:
                yield _audit_from_row(row)
            if len(rows) < batch:
                return
            after = int(rows[-1]["id"])

    def audit_entries(
        self, repository: str | None = None, pr_number: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        rows = self._db.fetch(
            "list_audit", {"repository": repository, "pr_number": pr_number, "limit": limit}
        )
        return [_audit_from_row(row) for row in rows]


def _audit_from_row(row: Mapping[str, Any]) -> AuditEntry:
    detail = row["detail"]
    return AuditEntry.from_row(row, json.loads(detail) if isinstance(detail, str) else detail)


def open_store(url: str) -> Store:
    """``sqlite:///abs/path.db``, ``sqlite:///rel.db`` or ``postgresql://...``."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        # Same convention as SQLAlchemy: sqlite:///rel.db, sqlite:////abs/path.db
        raw = url.removeprefix("sqlite://")
        if not raw.startswith("/") or len(raw) < 2:
            raise ConfigError(
                f"state URL {url!r}: use sqlite:///relative.db or sqlite:////absolute/path.db"
            )
        from envs.store.sqlite import SqliteConnector

        return Store(SqliteConnector(Path(unquote(raw[1:]))))
    if scheme in {"postgresql", "postgres"}:
        from envs.store.postgres import PostgresConnector

        return Store(PostgresConnector(url))
    raise ConfigError(
        f"state URL scheme {scheme!r} is not supported; use sqlite:///path or postgresql://..."
    )
