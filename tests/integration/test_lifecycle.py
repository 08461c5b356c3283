"""Lifecycle against a real store; the engine is a recording stand-in.

The stand-in sits at the process boundary of the Pulumi engine (which the
engine tests run for real); here it lets us inject failures precisely.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from envs.config.spec_loading import parse_spec
from envs.core.errors import OperationFailed
from envs.core.model import EnvironmentKey, EnvironmentStatus, OperationKind, OperationResult
from envs.environments.lifecycle import Lifecycle, UpRequest
from envs.store import Store, open_store
from tests.doubles import Clock, RecordingEngine

SPEC = parse_spec(
    "version: 1\n"
    "image: {repository: ghcr.io/acme/shop}\n"
    'url: {host_template: "{name}.p.acme.dev"}\n'
    "ttl: 48h\n",
    "spec.yaml",
)
IMAGE = "ghcr.io/acme/shop@sha256:" + "f" * 64
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/s.db")
    yield opened
    opened.close()


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture
def lifecycle(store: Store, engine: RecordingEngine) -> Lifecycle:
    return Lifecycle(store, engine, clock=Clock())  # type: ignore[arg-type]


def request(branch: str = "feature/login", sha: str = "a" * 40) -> UpRequest:
    return UpRequest("acme/shop", 42, branch, sha, IMAGE, "octocat")


def test_up_makes_the_environment_ready_with_its_url(lifecycle: Lifecycle, store: Store) -> None:
    env = lifecycle.up(request(), SPEC)
    assert env.status is EnvironmentStatus.READY
    assert env.url == f"http://{env.namespace}.p.acme.dev"
    assert env.expires_at - env.created_at == timedelta(hours=48, seconds=0)
    [op] = store.operations()
    assert (op.kind, op.result, op.actor, op.head_sha) == (
        OperationKind.UP,
        OperationResult.SUCCEEDED,
        "octocat",
        "a" * 40,
    )
    assert [e.action for e in store.audit_entries()] == ["up.succeeded"]


def test_failed_up_is_recorded_and_raised(
    lifecycle: Lifecycle, engine: RecordingEngine, store: Store
) -> None:
    engine.fail_next = "quota exceeded"
    with pytest.raises(OperationFailed, match="quota exceeded"):
        lifecycle.up(request(), SPEC)
    env = store.require(EnvironmentKey("acme/shop", 42))
    assert env.status is EnvironmentStatus.FAILED
    assert env.last_error == "quota exceeded"
    [op] = store.operations()
    assert op.result is OperationResult.FAILED
    assert op.error == "quota exceeded"


def test_retrying_up_after_failure_converges(lifecycle: Lifecycle, engine: RecordingEngine) -> None:
    engine.fail_next = "transient"
    with pytest.raises(OperationFailed):
        lifecycle.up(request(), SPEC)
    assert lifecycle.up(request(), SPEC).status is EnvironmentStatus.READY


def test_namespace_survives_a_branch_rename(lifecycle: Lifecycle, engine: RecordingEngine) -> None:
    first = lifecycle.up(request("feature/login"), SPEC)
    second = lifecycle.up(request("feature/sign-in", sha="b" * 40), SPEC)
    assert second.namespace == first.namespace
    assert engine.calls == [("up", first.stack), ("up", first.stack)]
    assert second.created_at == first.created_at
    assert engine.specs[-1].labels["preview-envs.dev/sha"] == "b" * 40


def test_down_destroys_and_is_repeatable(
    lifecycle: Lifecycle, engine: RecordingEngine, store: Store
) -> None:
    env = lifecycle.up(request(), SPEC)
    assert lifecycle.down(env.key, "merge-bot", "merged").status is EnvironmentStatus.DESTROYED
    assert lifecycle.down(env.key, "gc").status is EnvironmentStatus.DESTROYED
    assert engine.calls.count(("destroy", env.stack)) == 2
    actions = [e.action for e in reversed(store.audit_entries())]
    assert actions == ["up.succeeded", "down.succeeded", "down.succeeded"]


def test_down_of_a_stack_gc_found_absent_skips_the_engine(
    lifecycle: Lifecycle, engine: RecordingEngine, store: Store
) -> None:
    env = lifecycle.up(request(), SPEC)
    gone = lifecycle.down(env.key, "gc", "expired", stack_absent=True)
    assert gone.status is EnvironmentStatus.DESTROYED
    assert ("destroy", env.stack) not in engine.calls
    assert store.operations()[0].kind is OperationKind.DOWN


def test_failed_down_leaves_a_failed_record_for_gc(
    lifecycle: Lifecycle, engine: RecordingEngine, store: Store
) -> None:
    env = lifecycle.up(request(), SPEC)
    engine.fail_next = "stack locked"
    with pytest.raises(OperationFailed):
        lifecycle.down(env.key, "bot")
    assert store.require(env.key).status is EnvironmentStatus.FAILED


def test_recreated_after_destroy_gets_fresh_creation_time(lifecycle: Lifecycle) -> None:
    first = lifecycle.up(request(), SPEC)
    lifecycle.down(first.key, "bot")
    again = lifecycle.up(request(), SPEC)
    assert again.created_at > first.created_at


def test_refresh_is_journalled(lifecycle: Lifecycle, engine: RecordingEngine, store: Store) -> None:
    env = lifecycle.up(request(), SPEC)
    lifecycle.refresh(env.key, "ops")
    engine.fail_next = "cluster unreachable"
    with pytest.raises(OperationFailed, match="cluster unreachable"):
        lifecycle.refresh(env.key, "ops")
    kinds = [(o.kind, o.result) for o in store.operations()]
    assert kinds[:2] == [
        (OperationKind.REFRESH, OperationResult.FAILED),
        (OperationKind.REFRESH, OperationResult.SUCCEEDED),
    ]
