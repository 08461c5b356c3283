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
