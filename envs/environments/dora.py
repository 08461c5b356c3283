"""The DORA key figures of preview deployments, computed from the journal. Pure.

Definitions follow the DORA report's wording, applied to previews (docs/metrics.md
gives each formula):

- **Deployment frequency**: deployments that became ready, per day and per week of the
  window.
- **Lead time for changes**: from the moment CI promoted a commit's image to the moment
  that commit's preview was ready (a commit's own date is its author's to set; the
  promotion is recorded by this service). Median and 95th percentile.
- **Change failure rate**: the share of deployments that failed, or that were later
  rolled back, among all deployments that finished in the window.
- **Time to restore**: from a failed deployment to the next ready one of the same
  preview. Median.

Beside them, the previews' own figures: time to URL (a deployment's own duration),
teardown time, live previews and their average lifetime.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from envs.core.model import Environment, Operation, OperationKind, OperationResult


@dataclass(frozen=True)
class Dora:
    since: datetime
    until: datetime
    deployments: int
    failed: int
    rolled_back: int
    per_day: float
    per_week: float
    lead_time_p50_s: float | None
    lead_time_p95_s: float | None
    change_failure_rate: float | None
    time_to_restore_p50_s: float | None
    time_to_url_p50_s: float | None
    time_to_url_p95_s: float | None
    teardown_p50_s: float | None
    live_previews: int
    average_lifetime_s: float | None

    def to_json(self) -> dict[str, Any]:
        figures = {k: v for k, v in self.__dict__.items() if k not in ("since", "until")}
        rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), **rounded}


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def compute(
    operations: Iterable[Operation],
    promoted_at: Mapping[tuple[str, str], datetime],
    rolled_back: Iterable[tuple[str, int, str]],
    environments: Iterable[Environment],
    since: datetime,
    until: datetime,
) -> Dora:
    """The figures for operations finished in [since, until).

    ``promoted_at`` maps (repository, commit) to when CI promoted its image;
    ``rolled_back`` names (repository, PR, commit) versions a rollback replaced.
    """
    ops = sorted(operations, key=lambda op: op.started_at)
    ups = [
        op for op in ops
        if op.kind is OperationKind.UP and op.finished_at is not None
        and since <= op.finished_at < until and op.result is not OperationResult.RUNNING
    ]  # fmt: skip
    ready = [op for op in ups if op.result is OperationResult.SUCCEEDED]
    failed = [op for op in ups if op.result is OperationResult.FAILED]
    undone = set(rolled_back)
    reverted = [op for op in ready if (op.repository, op.pr_number, op.head_sha) in undone]
    days = max((until - since).total_seconds() / 86_400, 1e-9)
    lead = [
        s for op in ready
        if op.head_sha is not None
        and (s := _seconds(op.finished_at, promoted_at.get((op.repository, op.head_sha))))
        is not None and s >= 0
    ]  # fmt: skip
    restore = [s for s in (_restored(op, ops) for op in failed) if s is not None]
    to_url = [s for op in ready if (s := _seconds(op.finished_at, op.started_at)) is not None]
    downs = [
        s for op in ops
        if op.kind is OperationKind.DOWN and op.result is OperationResult.SUCCEEDED
        and op.finished_at is not None and since <= op.finished_at < until
        and (s := _seconds(op.finished_at, op.started_at)) is not None
    ]  # fmt: skip
    live = [e for e in environments if e.status.is_live]
    lifetimes = _lifetimes(ops, since, until)
    return Dora(
        since=since,
        until=until,
        deployments=len(ups),
        failed=len(failed),
        rolled_back=len(reverted),
        per_day=len(ready) / days,
        per_week=len(ready) / days * 7,
        lead_time_p50_s=percentile(lead, 0.5),
        lead_time_p95_s=percentile(lead, 0.95),
        change_failure_rate=(len(failed) + len(reverted)) / len(ups) if ups else None,
        time_to_restore_p50_s=percentile(restore, 0.5),
        time_to_url_p50_s=percentile(to_url, 0.5),
        time_to_url_p95_s=percentile(to_url, 0.95),
        teardown_p50_s=percentile(downs, 0.5),
        live_previews=len(live),
        average_lifetime_s=sum(lifetimes) / len(lifetimes) if lifetimes else None,
    )


def _restored(failure: Operation, ops: Sequence[Operation]) -> float | None:
    """Seconds from a failed deployment to the next ready one of the same preview."""
    for op in ops:
        same = (op.repository, op.pr_number) == (failure.repository, failure.pr_number)
        if (
            same
            and op.kind is OperationKind.UP
            and op.result is OperationResult.SUCCEEDED
            and op.started_at > failure.started_at
        ):
            return _seconds(op.finished_at, failure.finished_at)
    return None


def _lifetimes(ops: Sequence[Operation], since: datetime, until: datetime) -> list[float]:
    """From a preview's first ready deployment to its teardown (torn down in the window)."""
    born: dict[tuple[str, int], datetime] = {}
    lifetimes: list[float] = []
    for op in ops:
        key = (op.repository, op.pr_number)
        if op.kind is OperationKind.UP and op.result is OperationResult.SUCCEEDED:
            born.setdefault(key, op.started_at)
        elif (
            op.kind is OperationKind.DOWN
            and op.result is OperationResult.SUCCEEDED
            and op.finished_at is not None
            and since <= op.finished_at < until
            and key in born
        ):
            lifetimes.append((op.finished_at - born.pop(key)).total_seconds())
    return lifetimes


WINDOW = timedelta(days=30)
