"""The one seam between the store and a database driver.

The store speaks in named queries and plain dict rows; a connector runs them
on SQLite or PostgreSQL. Both connectors pass the same test suite.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = dict[str, Any]


class UniqueViolation(Exception):
    """A write hit a unique constraint; ``constraint`` names the column(s) if known."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


class Connector(Protocol):
    dialect: str

    def fetch(self, query: str, params: Mapping[str, Any]) -> list[Row]:
        """Run a named query and return its rows (empty for plain writes)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group the following calls atomically; nested use joins the outer one."""
        ...

    def migrate(self, scripts: list[tuple[int, str]]) -> list[int]:
        """Apply every script whose version is not applied yet; return those applied."""
        ...

    def close(self) -> None: ...


def iter_versions(applied: set[int], scripts: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """The scripts still to apply, in version order."""
    for version, sql in sorted(scripts):
        if version not in applied:
            yield version, sql
