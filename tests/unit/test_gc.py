"""What the cleanup cron removes, for every kind of debris (pure planning)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from envs.core.model import Environment, EnvironmentKey, EnvironmentStatus, OperationKind
from envs.environments.gc import (
    EXPIRY_WARNING,
    ActionKind,
    ClusterNamespace,
    GcAction,
    Inventory,
    TeardownReason,
    plan,
    repositories,
    to_warn,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def env(
    pr: int, status: EnvironmentStatus = EnvironmentStatus.READY, **changes: object
) -> Environment:
    base = Environment(
        repository="acme/shop", pr_number=pr, branch="b",
        namespace=f"pr-{pr}-b", stack=f"pr-{pr}-b",
        status=status, created_at=NOW - 5 * HOUR, updated_at=NOW - HOUR, expires_at=NOW + HOUR,
    )  # fmt: skip
    return base.with_changes(**changes) if changes else base


def ns(name: str, age: timedelta = HOUR, terminating: bool = False) -> ClusterNamespace:
    return ClusterNamespace(name, NOW - age, terminating)


def inventory(*envs: Environment, **kwargs: object) -> Inventory:
    stacks = kwargs.pop("stacks", frozenset(e.stack for e in envs if e.status.is_live))
    namespaces = kwargs.pop("namespaces", tuple(ns(e.namespace) for e in envs if e.status.is_live))
    return Inventory(envs, stacks, namespaces, **kwargs)  # type: ignore[arg-type]


def test_healthy_environments_are_left_alone() -> None:
    assert plan(inventory(env(1), env(2)), NOW) == []


def test_expired_environment_is_torn_down() -> None:
    expired = env(1, expires_at=NOW - timedelta(minutes=1))
    assert plan(inventory(expired, env(2)), NOW) == [
        GcAction(ActionKind.DOWN, "pr-1-b", TeardownReason.EXPIRED, EnvironmentKey("acme/shop", 1))
    ]


def test_closed_pr_is_torn_down_when_github_was_asked() -> None:
    open_prs = {"acme/shop": frozenset({2})}
    [action] = plan(inventory(env(1), env(2), open_prs=open_prs), NOW)
    assert (action.target, action.reason) == ("pr-1-b", TeardownReason.PR_CLOSED)


def test_repository_github_did_not_report_on_is_not_assumed_closed() -> None:
    assert plan(inventory(env(1), open_prs={"other/repo": frozenset()}), NOW) == []


def test_half_destroyed_environment_is_destroyed_again() -> None:
    stuck = env(1, EnvironmentStatus.DESTROYING, updated_at=NOW - HOUR)
    failed_down = env(2, EnvironmentStatus.FAILED)
    failed_up = env(3, EnvironmentStatus.FAILED)
    last = {e.key: k for e, k in ((failed_down, OperationKind.DOWN), (failed_up, OperationKind.UP))}
    actions = plan(inventory(stuck, failed_down, failed_up, last_operations=last), NOW)
    assert [(a.target, a.reason) for a in actions] == [
        ("pr-1-b", TeardownReason.HALF_DESTROYED),
        ("pr-2-b", TeardownReason.HALF_DESTROYED),
    ]


def test_a_down_in_progress_is_not_raced() -> None:
    running = env(1, EnvironmentStatus.DESTROYING, updated_at=NOW - timedelta(minutes=1))
    assert plan(inventory(running), NOW) == []


def test_orphan_stack_without_a_live_record_is_destroyed() -> None:
    gone = env(1, EnvironmentStatus.DESTROYED)
    actions = plan(inventory(gone, stacks=frozenset({"pr-1-b", "pr-9-x"}), namespaces=()), NOW)
    assert [(a.kind, a.target) for a in actions] == [
        (ActionKind.DESTROY_STACK, "pr-1-b"),
        (ActionKind.DESTROY_STACK, "pr-9-x"),
    ]


def test_orphan_namespace_is_deleted_after_the_grace_period() -> None:
    namespaces = (
        ns("pr-7-old", age=HOUR),
        ns("pr-8-new", age=timedelta(minutes=2)),
        ns("pr-9-t", terminating=True),
    )
    actions = plan(inventory(namespaces=namespaces, stacks=frozenset()), NOW)
    assert [(a.kind, a.target, a.reason) for a in actions] == [
        (ActionKind.DELETE_NAMESPACE, "pr-7-old", TeardownReason.ORPHAN_NAMESPACE)
    ]
    assert (
        len(plan(inventory(namespaces=namespaces, stacks=frozenset()), NOW, grace=timedelta(0)))
        == 2
    )


def test_namespace_of_a_stack_is_left_to_the_stack() -> None:
    actions = plan(inventory(stacks=frozenset({"pr-1-b"}), namespaces=(ns("pr-1-b"),)), NOW)
    assert [a.kind for a in actions] == [ActionKind.DESTROY_STACK]


def test_github_is_asked_once_per_repository() -> None:
    envs = [
        env(1),
        env(2),
        env(3, repository="acme/blog"),
        env(4, EnvironmentStatus.DESTROYED, repository="x/y"),
    ]
    assert repositories(envs) == ["acme/blog", "acme/shop"]


def test_crashed_update_lock_is_cancelled_first() -> None:
    crashed = env(1, EnvironmentStatus.PROVISIONING)
    running = env(2, EnvironmentStatus.PROVISIONING)
    unfinished = {crashed.key: NOW - HOUR, running.key: NOW - timedelta(minutes=1)}
    locked = frozenset({"pr-2-b", "pr-9-x"})
    actions = plan(inventory(crashed, running, locked_stacks=locked, unfinished=unfinished), NOW)
    assert [(a.kind, a.target) for a in actions][:2] == [
        (ActionKind.CANCEL_LOCK, "pr-1-b"),
        (ActionKind.CANCEL_LOCK, "pr-9-x"),
    ], "an operation that started recently may still be running: its lock is spared"


def test_namespace_stuck_terminating_gets_its_finalizers_released() -> None:
    stuck = ClusterNamespace("pr-5-b", NOW - 5 * HOUR, terminating=True, deleting_since=NOW - HOUR)
    fresh = ClusterNamespace("pr-6-b", NOW - 5 * HOUR, terminating=True, deleting_since=NOW)
    actions = plan(inventory(namespaces=(stuck, fresh), stacks=frozenset()), NOW)
    assert [(a.kind, a.target, a.reason) for a in actions] == [
        (ActionKind.RELEASE_FINALIZERS, "pr-5-b", TeardownReason.STUCK_TERMINATING)
    ]


def test_a_pr_is_warned_once_before_its_preview_expires_and_again_after_an_extension() -> None:
    soon = env(1, expires_at=NOW + 3 * HOUR)
    later = env(2, expires_at=NOW + 30 * HOUR)
    gone = env(3, expires_at=NOW - HOUR)  # gc's to remove, not to warn
    failed = env(4, EnvironmentStatus.FAILED, expires_at=NOW + HOUR)
    found = inventory(soon, later, gone, failed)
    assert [e.pr_number for e in to_warn(found, NOW, EXPIRY_WARNING)] == [1]
    told = inventory(soon, later, gone, failed, warned={soon.key: soon.expires_at})
    assert to_warn(told, NOW, EXPIRY_WARNING) == [], "once per expiry"
    extended = soon.with_changes(expires_at=NOW + 20 * HOUR)  # /preview extend, still inside
    assert to_warn(inventory(extended, warned={soon.key: soon.expires_at}), NOW, EXPIRY_WARNING)
    assert [e.pr_number for e in to_warn(found, NOW, 48 * HOUR)] == [1, 2]
