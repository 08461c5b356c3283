"""Each engine failure is counted under one reason: the reasons are the metric's labels."""

from __future__ import annotations

import pytest

from envs.core.model import FailureReason
from envs.environments.lifecycle import failure_reason
from stacks.errors import ClusterUnreachable, EngineError, RolloutNeverSucceeds, StackLocked


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RolloutNeverSucceeds("crash loop"), FailureReason.ROLLOUT),
        (StackLocked("locked"), FailureReason.LOCKED),
        (ClusterUnreachable("no kubeconfig"), FailureReason.CLUSTER),
        (EngineError("anything else"), FailureReason.ENGINE),
    ],
)
def test_engine_failures_map_to_one_reason_each(error: EngineError, reason: FailureReason) -> None:
    assert failure_reason(error) is reason
