"""Prometheus series read from the state store at scrape time.

Every replica of the service reads the same store, so every replica reports
the same queue, environments and journal: a scrape of any one is the truth,
and nothing is lost when a worker process (which has no HTTP endpoint) dies.
The journal is read whole at each scrape, so the histograms are cumulative as
Prometheus expects (the journal is never pruned); at tens of thousands of
operations that is a few milliseconds of SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from envs.core.model import EnvironmentStatus, Operation, OperationResult
from envs.store import Store

# Deploys take seconds to minutes; a rollout deadline is ten minutes by default.
OPERATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
JOURNAL_READ = 1_000_000


class StateCollector(Collector):
    """Jobs, the oldest job's wait, environments by status, operation durations by outcome,
    failures by reason, GitHub's rate limit."""

    def __init__(
        self, store: Callable[[], AbstractContextManager[Store]], clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        with self.store() as store:
            counts = store.queue.counts()
            oldest = store.queue.oldest_queued()
            environments = store.environments()
            operations = store.operations(limit=JOURNAL_READ)
            rate_limits = store.github_cache.rate_limits()
        jobs = GaugeMetricFamily("preview_jobs", "Jobs in the queue by status.", labels=["status"])
        for job_status, count in counts.items():
            jobs.add_metric([job_status.value], count)
        yield jobs
        waiting = (self.clock() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "preview_queue_oldest_seconds",
            "How long the longest-waiting queued job has waited (0: none queued).",
            value=max(0.0, waiting),
        )
        by_status = GaugeMetricFamily(
            "preview_environments", "Environments by status.", labels=["status"]
        )
        for status in EnvironmentStatus:
            by_status.add_metric([status.value], sum(e.status is status for e in environments))
        yield by_status
        yield _durations(operations)
        yield _failures(operations)
        remaining = GaugeMetricFamily(
            "preview_github_rate_limit_remaining",
            "GitHub's primary rate limit left, per account, as the workers last saw it.",
            labels=["account"],
        )
        limit = GaugeMetricFamily(
            "preview_github_rate_limit",
            "GitHub's primary rate limit per hour, per account.",
            labels=["account"],
        )
        for seen in rate_limits:
            remaining.add_metric([seen.account], seen.remaining)
            limit.add_metric([seen.account], seen.limit)
        yield remaining
        yield limit


def _durations(operations: Sequence[Operation]) -> HistogramMetricFamily:
    """Finished operations' durations by kind (up, down, reseed) and result."""
    family = HistogramMetricFamily(
        "preview_operation_seconds",
        "Lifecycle operations' durations (up = deploy, down = teardown, reseed = seed).",
        labels=["kind", "result"],
    )
    groups: dict[tuple[str, str], list[float]] = {}
    for op in operations:
        if op.finished_at is None or op.result is OperationResult.RUNNING:
            continue
        seconds = (op.finished_at - op.started_at).total_seconds()
        groups.setdefault((op.kind.value, op.result.value), []).append(seconds)
    for (kind, result), taken in sorted(groups.items()):
        buckets = [(str(b), float(sum(t <= b for t in taken))) for b in OPERATION_BUCKETS]
        buckets.append(("+Inf", float(len(taken))))
        family.add_metric([kind, result], buckets, sum(taken))
    return family


def _failures(operations: Sequence[Operation]) -> CounterMetricFamily:
    """Failed operations by kind and reason (``unknown``: failed before reasons were kept)."""
    family = CounterMetricFamily(
        "preview_failures",
        "Failed lifecycle operations by kind and reason (envs.core.model.FailureReason).",
        labels=["kind", "reason"],
    )
    counts: dict[tuple[str, str], int] = {}
    for op in operations:
        if op.result is OperationResult.FAILED:
            key = (op.kind.value, op.reason.value if op.reason else "unknown")
            counts[key] = counts.get(key, 0) + 1
    for (kind, reason), count in sorted(counts.items()):
        family.add_metric([kind, reason], count)
    return family
