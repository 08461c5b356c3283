"""What a seeding run did, as the lifecycle records it and the PR is told.

In the core so that the lifecycle journals a seed without importing the
seeders (and psycopg) for one type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SeedSummary:
    mode: str
    rows: Mapping[str, int]
    seconds: float
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def describe(self) -> str:
        return f"{self.mode}: {self.total_rows:,} rows in {len(self.rows)} tables"

    def headline(self) -> str:
        """What the PR is told: an anonymised copy's row count is the source's, so none."""
        if self.mode == "anonymised":
            return f"{self.mode}: {len(self.rows)} tables"
        return self.describe()

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rows": dict(self.rows),
            "total_rows": self.total_rows,
            "seconds": round(self.seconds, 3),
            **self.extra,
        }
