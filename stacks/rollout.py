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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

POLL_S = 0.5  # two reads a second while a preview rolls out: cheap, and half a second sooner


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


# What the kubelet says of a container that no retry will start; the fix, where known.
_ROOT_FIX = (
    "the app's image runs as root (or as a user name, not a number), which the namespace's"
    " Pod Security level `restricted` refuses: build it with a numeric non-root user"
    " (`USER 10001` in its Dockerfile), or set `security.pod_security: baseline` in the spec"
)
_PULL_REFUSED = ("not found", "manifest unknown", "unauthorized", "denied", "forbidden")
CRASHES_BEFORE_GIVING_UP = 2


def blocked(pods: Iterable[Mapping[str, Any]], image: str) -> str | None:
    """Why the new version's pods can never start, read from their container statuses; else None.

    Only pods running ``image`` (the new version, pinned by digest) count:
    an old version's trouble is not this rollout's. Transient states (a
    pull in progress, a first crash) are not reasons; a refusal by policy,
    an image the registry does not have, or the same crash twice are.
    """
    for pod in pods:
        spec = pod.get("spec") or {}
        if not any(c.get("image") == image for c in spec.get("containers") or ()):
            continue
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            reason = _never_starts(status)
            if reason is not None:
                name = (pod.get("metadata") or {}).get("name", "a pod")
                return f"{reason} (pod {name}, container {status.get('name')})"
    return None


def _never_starts(status: Mapping[str, Any]) -> str | None:
    waiting = (status.get("state") or {}).get("waiting") or {}
    why, message = str(waiting.get("reason") or ""), str(waiting.get("message") or "")
    if why == "CreateContainerConfigError":
        return _ROOT_FIX if "runAsNonRoot" in message else f"{why}: {message}"
    if why in ("ErrImagePull", "ImagePullBackOff") and any(
        word in message.lower() for word in _PULL_REFUSED
    ):
        return f"the image cannot be pulled: {message}"
    if why == "InvalidImageName":
        return f"{why}: {message}"
    crashed = ((status.get("lastState") or {}).get("terminated")) or {}
    restarts = int(status.get("restartCount") or 0)
    if why == "CrashLoopBackOff" and restarts >= CRASHES_BEFORE_GIVING_UP:
        exit_code = crashed.get("exitCode", "?")
        ended = crashed.get("reason") or "Error"
        return f"the app keeps crashing: {ended}, exit code {exit_code}, {restarts} restarts"
    return None


def wait(
    read: Callable[[], Mapping[str, Any] | None],
    timeout_s: float,
    emit: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stuck: Callable[[], str | None] = lambda: None,
) -> None:
    """Return once ``read()`` shows the rollout done; raise :class:`RolloutFailed` if it cannot be.

    Says what it waits for each time that changes; ``read()`` returning None
    (no Deployment yet) is waited on like the rest. ``stuck()`` says why
    the new pods can never start (:func:`blocked`), which ends the wait at
    once instead of at the deadline.
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
        reason = stuck()
        if reason is not None:
            raise RolloutFailed(reason)
        if clock() > deadline:
            late = f"not done after {timeout_s:.0f}s: still waiting for {state.waiting}"
            raise RolloutFailed(late)
        if state.waiting != said:
            emit(f"waiting for {state.waiting}")
            said = state.waiting
        sleep(POLL_S)
