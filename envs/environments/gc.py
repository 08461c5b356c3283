"""What the cleanup cron removes, decided from an inventory. Purely computational.

The inventory is what the store, the Pulumi backend and the cluster each
say exists; the plan is the list of removals that reconcile them. Nothing
here performs I/O, so every kind of debris is tested without a cluster and
``previewctl gc --dry-run`` prints exactly what a real run would do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from envs.core.model import Environment, EnvironmentKey, EnvironmentStatus, OperationKind


class TeardownReason(StrEnum):
    EXPIRED = "expired"  # TTL passed
    PR_CLOSED = "pr-closed"  # GitHub says the PR is closed; the webhook was missed
    HALF_DESTROYED = "half-destroyed"  # a down that failed or crashed midway
    ORPHAN_STACK = "orphan-stack"  # a stack with no live environment record
    ORPHAN_NAMESPACE = "orphan-namespace"  # labelled ours, no record and no stack
    LOCKED_STACK = "locked-stack"  # an update that crashed and left the stack locked
    STUCK_TERMINATING = "stuck-terminating"  # deleted long ago, held by finalizers


class ActionKind(StrEnum):
    CANCEL_LOCK = "cancel-lock"  # release a crashed update's lock (runs before the rest)
    DOWN = "down"  # lifecycle down: destroy stack, remove it, mark destroyed
    DESTROY_STACK = "destroy-stack"  # engine destroy + remove, no record to update
    DELETE_NAMESPACE = "delete-namespace"  # plain namespace delete
    RELEASE_FINALIZERS = "release-finalizers"  # clear finalizers left inside a namespace


@dataclass(frozen=True)
class ClusterNamespace:
    name: str
    created_at: datetime
    terminating: bool = False
    deleting_since: datetime | None = None


@dataclass(frozen=True)
class Inventory:
    environments: tuple[Environment, ...]
    stacks: frozenset[str]
    namespaces: tuple[ClusterNamespace, ...]
    # Kind of the latest journalled operation per environment.
    last_operations: Mapping[EnvironmentKey, OperationKind] = field(default_factory=dict)
    # Stacks the backend reports with an update in progress.
    locked_stacks: frozenset[str] = frozenset()
    # Start of the oldest journalled operation still marked running, per environment.
    unfinished: Mapping[EnvironmentKey, datetime] = field(default_factory=dict)
    # Open PR numbers per repository, or None when GitHub was not asked.
    open_prs: Mapping[str, frozenset[int]] | None = None
    # The expiry each environment was last warned of (an extension moves it: warn again).
    warned: Mapping[EnvironmentKey, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class GcAction:
    kind: ActionKind
    target: str  # namespace or stack name
    reason: TeardownReason
    key: EnvironmentKey | None = None

    def describe(self) -> str:
        owner = f" ({self.key})" if self.key else ""
        return f"{self.kind.value} {self.target}{owner}: {self.reason.value}"


# How long before its expiry a PR is told, once, that its preview will go.
EXPIRY_WARNING = timedelta(hours=24)


def to_warn(inventory: Inventory, now: datetime, window: timedelta) -> list[Environment]:
    """Ready environments expiring within ``window`` whose current expiry no warning named."""
    return [
        env
        for env in sorted(inventory.environments, key=lambda e: e.expires_at)
        if env.status is EnvironmentStatus.READY
        and now < env.expires_at <= now + window
        and inventory.warned.get(env.key) != env.expires_at
    ]


# A namespace younger than this may belong to an `up` that has not saved
# its record yet; never race a deployment in progress.
GRACE = timedelta(minutes=10)


def plan(inventory: Inventory, now: datetime, grace: timedelta = GRACE) -> list[GcAction]:
    """Every removal that reconciles store, backend and cluster, in a stable order."""
    actions: list[GcAction] = []
    live = [e for e in inventory.environments if e.status.is_live]
    actions += _locks(inventory, live, now, grace)
    for env in live:
        reason = _teardown_reason(env, inventory, now, grace)
        if reason is not None:
            actions.append(GcAction(ActionKind.DOWN, env.namespace, reason, env.key))
    known_stacks = {e.stack for e in live}
    known_namespaces = {e.namespace for e in live}
    for stack in sorted(inventory.stacks - known_stacks):
        actions.append(GcAction(ActionKind.DESTROY_STACK, stack, TeardownReason.ORPHAN_STACK))
    for ns in sorted(inventory.namespaces, key=lambda n: n.name):
        orphan = ns.name not in known_namespaces and ns.name not in inventory.stacks
        if orphan and not ns.terminating and now - ns.created_at >= grace:
            actions.append(
                GcAction(ActionKind.DELETE_NAMESPACE, ns.name, TeardownReason.ORPHAN_NAMESPACE)
            )
        stuck_since = ns.deleting_since if ns.terminating else None
        if stuck_since is not None and now - stuck_since >= grace:
            actions.append(
                GcAction(ActionKind.RELEASE_FINALIZERS, ns.name, TeardownReason.STUCK_TERMINATING)
            )
    return actions


def _locks(
    inventory: Inventory, live: list[Environment], now: datetime, grace: timedelta
) -> list[GcAction]:
    """Locks left by crashed updates.

    Our lifecycle journals an operation before the engine runs and finishes
    it after, so an operation still "running" past the grace period means
    its process died, and its stack may be locked (backends that report
    locks are believed too). A recent one may be running: it is spared.
    """
    by_stack = {e.stack: e for e in live}
    crashed = {key for key, started in inventory.unfinished.items() if now - started >= grace}
    stacks = {e.stack for e in live if e.key in crashed}
    for stack in inventory.locked_stacks:
        env = by_stack.get(stack)
        if env is None or env.key not in inventory.unfinished or env.key in crashed:
            stacks.add(stack)
    return [
        GcAction(
            ActionKind.CANCEL_LOCK,
            stack,
            TeardownReason.LOCKED_STACK,
            by_stack[stack].key if stack in by_stack else None,
        )
        for stack in sorted(stacks)
    ]


def _teardown_reason(
    env: Environment, inventory: Inventory, now: datetime, grace: timedelta
) -> TeardownReason | None:
    stale = now - env.updated_at >= grace  # not a down that is running right now
    failed_down = (
        env.status is EnvironmentStatus.FAILED
        and inventory.last_operations.get(env.key) is OperationKind.DOWN
    )
    if (env.status is EnvironmentStatus.DESTROYING and stale) or failed_down:
        return TeardownReason.HALF_DESTROYED
    open_prs = inventory.open_prs
    if open_prs is not None and env.pr_number not in open_prs.get(env.repository, {env.pr_number}):
        return TeardownReason.PR_CLOSED
    if env.expires_at <= now:
        return TeardownReason.EXPIRED
    return None


def repositories(environments: Iterable[Environment]) -> list[str]:
    """Repositories with live environments: GitHub is asked once per repository."""
    return sorted({e.repository for e in environments if e.status.is_live})
