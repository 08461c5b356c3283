"""Job payloads are typed: read by attribute, checked where written, old shapes still read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from envs.core.jobs import JobKind
from envs.core.payloads import PAYLOADS, Deploy, PullRequestSnapshot, Report, Teardown, read


def test_every_job_kind_has_a_payload_model() -> None:
    assert set(PAYLOADS) == set(JobKind)
    assert all(model.kind is kind for kind, model in PAYLOADS.items())


def test_a_closed_delivery_queued_by_an_older_version_reads_as_a_teardown() -> None:
    flat = {
        "number": 7, "state": "closed", "head_sha": "a" * 40, "branch": "feat", "author": "dev",
        "draft": False, "fork": False, "labels": ["x"], "merged": True, "action": "closed",
        "sender": "maintainer", "reason": "merged",
    }  # fmt: skip
    teardown = read(JobKind.TEARDOWN, flat)
    assert isinstance(teardown, Teardown)
    assert (teardown.reason, teardown.actor) == ("merged", "maintainer")
    assert isinstance(teardown.pull_request, PullRequestSnapshot)
    assert teardown.pull_request.head_sha == "a" * 40


def test_payloads_round_trip_through_the_stored_json() -> None:
    deploy = Deploy(sha="b" * 40, image="r@sha256:" + "c" * 64, actor="ci", rollback=True)
    assert read(JobKind.DEPLOY, deploy.dump()) == deploy
    assert Report().dump() == {"awaiting": False}


def test_a_producer_that_forgets_a_field_fails_where_it_writes() -> None:
    with pytest.raises(ValidationError, match="image"):
        Deploy(sha="b" * 40, actor="ci")  # type: ignore[call-arg]
