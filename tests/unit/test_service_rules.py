"""Pure rules of the service: signatures, event mapping, deploy policy, backoff, the PR report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.config.spec_loading import parse_spec
from envs.core.jobs import BACKOFF_CAP, JobKind, Promotion, PullRequest, backoff
from envs.core.model import Environment, EnvironmentStatus
from envs.github import signature
from envs.github.events import PayloadInvalid, jobs_for
from envs.github.report import Situation, sticky_body
from envs.worker.policy import Verdict, decide

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SPEC = parse_spec(
    'version: 1\nimage: {repository: ghcr.io/acme/shop}\nurl: {host_template: "{name}.p.dev"}\n',
    "spec.yaml",
)
LABELLED = parse_spec(
    "version: 1\nimage: {repository: ghcr.io/acme/shop}\n"
    'url: {host_template: "{name}.p.dev"}\n'
    "deploy: {require_label: preview, drafts: true, forks: never}\n",
    "spec.yaml",
)
PROMOTED = Promotion("acme/shop", "a" * 40, "ghcr.io/acme/shop@sha256:" + "b" * 64, "ci", T0)


def pr(**changes: object) -> PullRequest:
    base = PullRequest("acme/shop", 1, "open", "a" * 40, "feat", "dev", False, False, (), T0)
    return base.__class__(**(base.__dict__ | changes))


# -- signatures -------------------------------------------------------------------


def test_github_documented_signature_vector() -> None:
    # The example from GitHub's "Validating webhook deliveries" documentation.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature.sign(b"It's a Secret to Everybody", b"Hello, World!") == expected
    assert signature.verify(b"It's a Secret to Everybody", b"Hello, World!", expected)


@given(st.binary(max_size=200), st.text(max_size=80))
def test_anything_but_the_right_signature_is_refused(body: bytes, header: str) -> None:
    secret = b"s3cret"
    if header != signature.sign(secret, body):
        assert not signature.verify(secret, body, header)
    assert not signature.verify(b"", body, signature.sign(b"", body))  # no secret, no trust


# -- events -------------------------------------------------------------------------


def test_payload_missing_what_we_need_is_a_clear_error() -> None:
    with pytest.raises(PayloadInvalid, match=r"pull_request payload: pull_request"):
        jobs_for("pull_request", {"action": "opened", "repository": {"full_name": "a/b"}}, "d")


def test_branch_deletion_and_tag_deletion() -> None:
    payload = {"ref": "feat/x", "ref_type": "branch", "repository": {"full_name": "a/b"}}
    payload |= {"sender": {"login": "dev"}}
    (job,) = jobs_for("delete", payload, "d").jobs
    assert job.kind is JobKind.BRANCH_DELETED
    assert job.payload["branch"] == "feat/x"
    assert jobs_for("delete", payload | {"ref_type": "tag"}, "d").jobs == ()


# -- policy ---------------------------------------------------------------------------


def test_policy_verdicts() -> None:
    assert decide(pr(), SPEC, PROMOTED).verdict is Verdict.DEPLOY
    assert decide(pr(), SPEC, PROMOTED).image == PROMOTED.image
    assert decide(pr(), SPEC, None).verdict is Verdict.WAIT_FOR_IMAGE
    assert decide(pr(state="closed"), SPEC, PROMOTED).verdict is Verdict.SKIP
    assert decide(pr(draft=True), SPEC, PROMOTED).verdict is Verdict.SKIP
    assert decide(pr(draft=True), SPEC, PROMOTED, requested=True).verdict is Verdict.DEPLOY
    assert decide(pr(fork=True), SPEC, PROMOTED).verdict is Verdict.NEEDS_APPROVAL
    approved = pr(fork=True, approved_sha="a" * 40)
    assert decide(approved, SPEC, PROMOTED).verdict is Verdict.DEPLOY


def test_labels_drafts_and_never_for_forks() -> None:
    unlabelled = decide(pr(draft=True), LABELLED, PROMOTED)
    assert unlabelled.verdict is Verdict.SKIP
    assert "`preview`" in unlabelled.reason
    assert decide(pr(draft=True, labels=("preview",)), LABELLED, PROMOTED).verdict is Verdict.DEPLOY
    forked = pr(fork=True, labels=("preview",), approved_sha="a" * 40)
    assert decide(forked, LABELLED, PROMOTED, requested=True).verdict is Verdict.SKIP


# -- backoff ------------------------------------------------------------------------------


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff(100) == BACKOFF_CAP
    with pytest.raises(ValueError, match="starts at 1"):
        backoff(0)


# -- the sticky comment ------------------------------------------------------------------


def env(**changes: object) -> Environment:
    base = Environment(
        "acme/shop",
        1,
        "feat",
        "pr-1-feat",
        "pr-1-feat",
        EnvironmentStatus.READY,
        T0,
        T0,
        T0 + timedelta(hours=72),
        head_sha="a" * 40,
        image=PROMOTED.image,
        url="http://pr-1-feat.p.dev",
    )
    return base.with_changes(**changes)


def test_sticky_shows_url_commit_image_and_expiry_when_ready() -> None:
    body = sticky_body(Situation(env(), pr()))
    assert "| URL | http://pr-1-feat.p.dev |" in body
    assert "`aaaaaaaaaaaa`" in body
    assert PROMOTED.image in body
    assert "2026-11-27 09:00 UTC" in body
    assert "/preview extend" in body


def test_errors_are_fenced_so_they_cannot_inject_markdown() -> None:
    hostile = "boom ``` <img src=x onerror=alert(1)> @everyone [link](http://evil)"
    body = sticky_body(Situation(env(status=EnvironmentStatus.FAILED, last_error=hostile), pr()))
    assert "````text\n" + hostile + "\n````" in body
    assert "| URL |" not in body  # a failed environment does not advertise a URL


@given(st.integers(min_value=3, max_value=12), st.text(max_size=40))
def test_no_run_of_backticks_in_an_error_closes_its_fence(run: int, tail: str) -> None:
    """A column named with four backticks, then a link: it must stay inside the block."""
    hostile = "column x" + "`" * run + "\n[click](http://evil.example)" + tail
    body = sticky_body(Situation(env(status=EnvironmentStatus.FAILED, last_error=hostile), pr()))
    opening = body.index("text\n") - 1
    fence_start = body.rindex("\n", 0, opening) + 1
    fence = body[fence_start : opening + 1]
    assert set(fence) == {"`"}
    assert len(fence) > run, "a fence no longer than a run inside it would be closed by it"
    assert body.index("[click]") < body.index("\n" + fence + "\n", opening + 1)
