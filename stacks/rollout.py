"""Whether a Deployment's rollout has finished, read from the object the API server returns. Pure.

The Kubernetes provider's own wait can end on a stale read: an update's
first event may still carry the previous revision and its status (every
old pod ready), and the provider then reports the new version rolled out
at once — an over-quota version was reported ready in a third of a
second while its pods could never start. This is the check ``kubectl
rollout status`` makes, run after every update: the controller has seen
the Deployment's current generation, every replica runs the new pod
template and is available, and no old one is left; or the controller has
given up (its progress deadline passed), which fails the rollout with the
controller's own reason. Pure but for :func:`wait`, whose reads, clock
and sleep are given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

POLL_S = 1.0


class RolloutFailed(Exception):
    """The new version did not roll out: the controller gave up, or the deadline passed."""


@dataclass(frozen=True)
class Rollout:
    done: bool
    failed: str | None = None  # why the controller gave up
    waiting: str = ""  # what it is waiting for, while neither


def assess(deployment: Mapping[str, Any]) -> Rollout:
    """The rollout state of a Deployment (its API object, camelCase keys)."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = int(metadata.get("generation") or 0)
    if int(status.get("observedGeneration") or 0) < generation:
        return Rollout(False, waiting="the controller to see the new version")
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Progressing" and condition.get("reason") == (
            "ProgressDeadlineExceeded"
        ):
            reason = str(condition.get("message") or "its progress deadline passed")
            return Rollout(False, failed=f"{reason}{_replica_failure(status)}")
    wanted = 1 if spec.get("replicas") is None else int(spec["replicas"])
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return Rollout(False, waiting=f"{updated} of {wanted} pods to run the new version")
    if total > updated:
        return Rollout(False, waiting=f"the old version's pods to stop ({total - updated} left)")
    if available < updated:
        return Rollout(False, waiting=f"{available} of {updated} new pods available")
    return Rollout(True)


def _replica_failure(status: Mapping[str, Any]) -> str:
    """The controller's reason pods could not be created (a quota), if it gave one."""
    for condition in status.get("conditions") or ():
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return f" ({condition.get('message')})"
    return ""


def wait(
    read: Callable[[], Mapping[str, Any] | None],
    timeout_s: float,
    emit: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once ``read()`` shows the rollout done; raise :class:`RolloutFailed` if it cannot be.

    Says what it waits for each time that changes; ``read()`` returning None
    (no Deployment yet) is waited on like the rest.
    """
    deadline = clock() + timeout_s
    said = ""
    while True:
        found = read()
        state = assess(found) if found is not None else Rollout(False, waiting="the Deployment")
        if state.done:
            return
        if state.failed:
            raise RolloutFailed(state.failed)
        if clock() > deadline:
            late = f"not done after {timeout_s:.0f}s: still waiting for {state.waiting}"
            raise RolloutFailed(late)
        if state.waiting != said:
            emit(f"waiting for {state.waiting}")
            said = state.waiting
        sleep(POLL_S)
