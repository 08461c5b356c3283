"""The DORA figures from a journal written by hand: every formula on numbers checked by eye."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from envs.core.jobs import Promotion
from envs.core.model import (
    Environment,
    EnvironmentKey,
    EnvironmentStatus,
    Operation,
    OperationKind,
    OperationResult,
)
from envs.environments.dora import compute, percentile
from envs.store import open_store
from tests.cli_runner import run_previewctl

T0 = datetime(2026, 12, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
REPO = "acme/shop"


def op(
    n: int, kind: OperationKind, start: int, seconds: int, result: OperationResult,
    pr: int = 1, sha: str = "a",
) -> Operation:  # fmt: skip
    started = T0 + start * MIN
    finished = started + timedelta(seconds=seconds)
    return Operation(n, REPO, pr, kind, "ci", started, result, sha * 40, "img", finished)


UP, DOWN = OperationKind.UP, OperationKind.DOWN
OK, FAILED = OperationResult.SUCCEEDED, OperationResult.FAILED


def test_the_figures_of_a_small_journal() -> None:
    journal = [
        op(1, UP, 0, 12, OK, sha="a"),  # PR 1 ready in 12 s
        op(2, UP, 60, 30, FAILED, sha="b"),  # a push that failed ...
        op(3, UP, 70, 18, OK, sha="c"),  # ... restored by the next push, 10 min later
        op(4, UP, 100, 20, OK, pr=2, sha="d"),  # PR 2, later rolled back
        op(5, DOWN, 120, 6, OK),  # PR 1 closed
    ]
    promoted = {(REPO, "a" * 40): T0 - 2 * MIN, (REPO, "c" * 40): T0 + 69 * MIN}
    live = Environment(
        repository=REPO, pr_number=2, branch="b", namespace="pr-2-b", stack="pr-2-b",
        status=EnvironmentStatus.READY, created_at=T0, updated_at=T0, expires_at=T0,
    )  # fmt: skip
    figures = compute(journal, promoted, [(REPO, 2, "d" * 40)], [live], T0, T0 + timedelta(days=2))
    assert (figures.deployments, figures.failed, figures.rolled_back) == (4, 1, 1)
    assert figures.per_day == pytest.approx(1.5)  # 3 ready deployments in 2 days
    assert figures.per_week == pytest.approx(10.5)
    assert figures.change_failure_rate == pytest.approx(0.5)  # (1 failed + 1 rolled back) / 4
    # a: promoted 2 min before, ready 12 s in: 132 s; c: 1 min + 18 s = 78 s.
    assert figures.lead_time_p50_s == pytest.approx(78)
    assert figures.lead_time_p95_s == pytest.approx(132)
    assert figures.time_to_restore_p50_s == pytest.approx(10 * 60 + 18 - 30)
    assert figures.time_to_url_p50_s == 18
    assert figures.time_to_url_p95_s == 20
    assert figures.teardown_p50_s == 6
    assert figures.live_previews == 1
    assert figures.average_lifetime_s == pytest.approx(120 * 60 + 6)


def test_outside_the_window_nothing_counts_and_nothing_divides_by_zero() -> None:
    figures = compute(
        [op(1, UP, 0, 12, OK)], {}, [], [], T0 + timedelta(days=1), T0 + timedelta(days=2)
    )
    assert figures.deployments == 0
    assert figures.change_failure_rate is None
    assert figures.lead_time_p50_s is None
    assert figures.per_day == 0


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


def test_the_command_reads_the_store_and_prints_json(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    now = datetime.now(UTC)
    key = EnvironmentKey(REPO, 9)
    store.pull_requests.promote(Promotion(REPO, "e" * 40, "img", "ci", now - 5 * MIN))
    first = store.start_operation(key, UP, "ci", now - 4 * MIN, "e" * 40, "img")
    store.finish_operation(first, OK, now - 4 * MIN + timedelta(seconds=15))
    store.close()
    result = run_previewctl(
        ("metrics", "dora", "--since", "7d", "--json"),
        tmp_path,
        {"PREVIEW_STATE_DIR": str(tmp_path)},
    )
    assert result.code == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["deployments"] == 1
    assert figures["lead_time_p50_s"] == pytest.approx(75, abs=1)
    assert figures["time_to_url_p50_s"] == pytest.approx(15, abs=1)
    assert figures["change_failure_rate"] == 0
    bad = run_previewctl(("metrics", "dora", "--since", "soon"), tmp_path, {})
    assert bad.code == 2
    assert "--since" in bad.stderr
