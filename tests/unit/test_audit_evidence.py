"""What the journal and the audit say of a deploy: its failure reason, its approving reviewers."""

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


def test_an_approval_counts_until_the_reviewers_next_deciding_review() -> None:
    from envs.github.client import approving

    reviews = [
        ("alice", "APPROVED", "a" * 40),
        ("bob", "CHANGES_REQUESTED", "a" * 40),
        ("bob", "APPROVED", "b" * 40),
        ("carol", "APPROVED", "a" * 40),
        ("carol", "DISMISSED", "a" * 40),
        ("dave", "COMMENTED", "b" * 40),
        ("alice", "COMMENTED", "b" * 40),
    ]
    assert approving(reviews) == [
        {"login": "alice", "commit": "a" * 40},
        {"login": "bob", "commit": "b" * 40},
    ]
