"""PostgreSQL connector: the store for several provisioner replicas."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from envs.core.errors import OperationFailed
from envs.core.redaction import scrub
from envs.store.connector import Row, UniqueViolation, iter_versions
from envs.store.queries import named_queries

_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)\b")
# Arbitrary constant: serialises migrations between replicas starting together.
_MIGRATION_LOCK = 0x70726576


def to_psycopg(sql: str) -> str:
    """``:name`` placeholders → ``%(name)s``; ``::casts`` are left alone."""
    return _PARAM.sub(r"%(\1)s", sql)


class PostgresConnector:
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            self._conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        except (psycopg.OperationalError, psycopg.ProgrammingError, ValueError) as exc:
            # A refused connection names host and port; a malformed URL's error can quote
            # any piece of it, the password's too.
            said = scrub(str(exc), url)
            raise OperationFailed(f"cannot connect to the state database: {said}") from None
        self._queries = {k: to_psycopg(v) for k, v in named_queries(self.dialect).items()}
        self._lock = threading.RLock()

    def fetch(self, query: str, params: Mapping[str, Any]) -> list[Row]:
        with self._lock, self._conn.cursor() as cur:
            try:
                cur.execute(self._queries[query].encode(), dict(params))
            except psycopg.errors.UniqueViolation as exc:
                name = exc.diag.constraint_name or "unique constraint"
                raise UniqueViolation(name) from exc
            return list(cur.fetchall()) if cur.description else []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, self._conn.transaction():
            yield

    def migrate(self, scripts: list[tuple[int, str]]) -> list[int]:
        done: list[int] = []
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version FROM schema_migrations")
            applied = {row["version"] for row in cur.fetchall()}
            for version, sql in iter_versions(applied, scripts):
                cur.execute(sql.encode())
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                done.append(version)
        return done

    def close(self) -> None:
        self._conn.close()
