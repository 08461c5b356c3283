"""SQLite connector: the embedded default, one file in WAL mode."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envs.store.connector import Row, UniqueViolation, iter_versions
from envs.store.queries import named_queries


def _param(value: Any) -> Any:
    # Fixed-width UTC text keeps lexical order equal to time order.
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


class SqliteConnector:
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._queries = named_queries(self.dialect)
        self._lock = threading.RLock()
        self._depth = 0

    def fetch(self, query: str, params: Mapping[str, Any]) -> list[Row]:
        sql = self._queries[query]
        with self._lock:
            try:
                cursor = self._conn.execute(sql, {k: _param(v) for k, v in params.items()})
            except sqlite3.IntegrityError as exc:
                if "UNIQUE" in str(exc):
                    raise UniqueViolation(str(exc).split(":", 1)[-1].strip()) from exc
                raise
            return [dict(row) for row in cursor.fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    def migrate(self, scripts: list[tuple[int, str]]) -> list[int]:
        done: list[int] = []
        with self.transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            applied = {r[0] for r in self._conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in iter_versions(applied, scripts):
                for statement in _statements(sql):
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?)",
                    (version, _param(datetime.now(UTC))),
                )
                done.append(version)
        return done

    def close(self) -> None:
        self._conn.close()


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()
