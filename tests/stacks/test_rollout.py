"""Reading a Deployment's rollout as ``kubectl rollout status`` does, from API objects."""

from __future__ import annotations

from typing import Any

import pytest

from stacks import rollout
from stacks.rollout import Rollout, RolloutFailed, assess


def deployment(
    generation: int = 2, observed: int = 2, wanted: int = 1, conditions: list[Any] | None = None,
    **status: int,
) -> dict[str, Any]:  # fmt: skip
    """A Deployment of ``wanted`` replicas whose status holds ``status`` (replicas, …)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "generation": generation,
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": wanted},
        "status": {"observedGeneration": observed, "conditions": conditions or [], **status},
    }  # fmt: skip


PREVIOUS_VERSION_READY = [
    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
]


def test_the_stale_read_the_provider_took_for_done_is_not_done() -> None:
    """The update's first event: new generation, the old version's status (all ready)."""
    stale = deployment(generation=2, observed=1, conditions=PREVIOUS_VERSION_READY,
                       replicas=1, updatedReplicas=1, availableReplicas=1)  # fmt: skip
    state = assess(stale)
    assert not state.done
    assert state.failed is None
    assert state.waiting == "the controller to see the new version"


def test_done_only_when_every_replica_runs_the_new_version_and_none_is_old() -> None:
    assert assess(deployment(wanted=2, replicas=2, updatedReplicas=2, availableReplicas=2)).done
    assert assess(deployment(wanted=2, replicas=2, updatedReplicas=1, availableReplicas=2)) == (
        Rollout(False, waiting="1 of 2 pods to run the new version")
    )
    surge = deployment(wanted=2, replicas=3, updatedReplicas=2, availableReplicas=2)
    assert assess(surge).waiting == "the old version's pods to stop (1 left)"
    starting = deployment(wanted=2, replicas=2, updatedReplicas=2, availableReplicas=1)
    assert assess(starting).waiting == "1 of 2 new pods available"
    assert assess(deployment(wanted=0)).done  # scaled to zero: nothing to wait for


def test_the_controllers_deadline_fails_the_rollout_with_its_reasons() -> None:
    conditions = [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
         "message": 'pods "app-7d9" is forbidden: exceeded quota: compute'},
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "app-7d9" has timed out progressing.'},
    ]  # fmt: skip
    state = assess(deployment(conditions=conditions, replicas=1, availableReplicas=1))
    assert state.failed == (
        'ReplicaSet "app-7d9" has timed out progressing.'
        ' (pods "app-7d9" is forbidden: exceeded quota: compute)'
    )


def test_wait_says_what_it_waits_for_and_gives_up_at_the_deadline() -> None:
    reads = iter([None, deployment(observed=1), deployment(observed=1)])
    now = [0.0]
    said: list[str] = []

    def sleep(seconds: float) -> None:
        now[0] += 40

    with pytest.raises(RolloutFailed, match="not done after 60s: still waiting for the controller"):
        rollout.wait(lambda: next(reads), 60, said.append, clock=lambda: now[0], sleep=sleep)
    assert said == [
        "waiting for the Deployment",
        "waiting for the controller to see the new version",
    ]
    done = iter(
        [deployment(observed=1), deployment(replicas=1, updatedReplicas=1, availableReplicas=1)]
    )
    rollout.wait(lambda: next(done), 60, said.append, clock=lambda: 0.0, sleep=lambda s: None)


NEW = "ghcr.io/acme/shop@sha256:" + "2b" * 32
OLD = "ghcr.io/acme/shop@sha256:" + "1a" * 32


def pod(image: str, **state: Any) -> dict[str, Any]:
    """A pod of the app running ``image`` whose one container is in ``state`` (kubelet's words)."""
    status = {"name": "app", "restartCount": state.pop("restarts", 0), "state": state}
    if "last" in state:
        status["lastState"] = {"terminated": state.pop("last")}
    return {
        "metadata": {"name": "app-7d9f-x2"},
        "spec": {"containers": [{"name": "app", "image": image}]},
        "status": {"containerStatuses": [status]},
    }


def test_an_image_that_runs_as_root_under_restricted_says_how_to_fix_it() -> None:
    message = (
        "container has runAsNonRoot and image will run as root (pod: app-7d9f-x2, container: app)"
    )
    waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
    said = rollout.blocked([pod(NEW, **waiting)], NEW)
    assert said is not None
    assert "runs as root" in said
    assert "`USER 10001`" in said
    assert "`security.pod_security: baseline`" in said
    assert "pod app-7d9f-x2, container app" in said


def test_reasons_no_retry_cures_end_the_wait_and_passing_ones_do_not() -> None:
    missing = {"reason": "ErrImagePull", "message": f"failed to pull {NEW}: manifest unknown"}
    assert "cannot be pulled" in (rollout.blocked([pod(NEW, waiting=missing)], NEW) or "")
    pulling = {"reason": "ErrImagePull", "message": "dial tcp: i/o timeout"}
    assert rollout.blocked([pod(NEW, waiting=pulling)], NEW) is None, "the network may come back"
    crash = {"reason": "CrashLoopBackOff", "message": "back-off 10s"}
    died = {"exitCode": 3, "reason": "Error"}
    assert rollout.blocked([pod(NEW, waiting=crash, restarts=1, last=died)], NEW) is None
    twice = rollout.blocked([pod(NEW, waiting=crash, restarts=2, last=died)], NEW)
    assert twice == (
        "the app keeps crashing: Error, exit code 3, 2 restarts (pod app-7d9f-x2, container app)"
    )
    assert rollout.blocked([pod(NEW, running={"startedAt": "2026-12-07T10:00:00Z"})], NEW) is None


def test_only_the_new_versions_pods_can_block_its_rollout() -> None:
    crash = {"reason": "CrashLoopBackOff", "message": "back-off 5m"}
    old = pod(OLD, waiting=crash, restarts=40, last={"exitCode": 1})
    assert rollout.blocked([old], NEW) is None


def test_the_wait_ends_as_soon_as_the_new_pods_are_stuck() -> None:
    read = lambda: deployment(updatedReplicas=1, replicas=1, availableReplicas=0)  # noqa: E731
    with pytest.raises(RolloutFailed, match="runs as root"):
        rollout.wait(
            read, 600, lambda _: None, clock=lambda: 0.0, sleep=lambda _: None,
            stuck=lambda: "the app's image runs as root",
        )  # fmt: skip
