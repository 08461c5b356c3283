"""A fork PR's approval covers the commit the maintainer reviewed and the image promoted for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from envs.config.spec_loading import parse_spec
from envs.core.jobs import Promotion, PullRequest
from envs.github.commands import Command, Invalid, Verb, parse
from envs.worker.approval import refusal
from envs.worker.policy import Verdict, decide

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HEAD, NEWER = "a" * 40, "c" * 40
SPEC = parse_spec(
    'version: 1\nimage: {repository: ghcr.io/acme/shop}\nurl: {host_template: "{name}.p.dev"}\n',
    "spec.yaml",
)
IMAGE = "ghcr.io/acme/shop@sha256:" + "b" * 64
OTHER = "ghcr.io/acme/shop@sha256:" + "d" * 64


def fork(**changes: object) -> PullRequest:
    base = PullRequest(
        "acme/shop", 1, "open", HEAD, "feat", "mallory", False, True, (), T0, head_pushed_at=T0
    )
    return base.__class__(**(base.__dict__ | changes))


def promoted(image: str = IMAGE) -> Promotion:
    return Promotion("acme/shop", HEAD, image, "ci", T0)


def test_up_takes_an_optional_commit() -> None:
    assert parse("/preview up") == Command(Verb.UP)
    assert parse("/preview up 1A2B3C4") == Command(Verb.UP, sha="1a2b3c4")
    assert isinstance(parse("/preview up 1a2b3c"), Invalid), "six digits name no commit safely"
    assert isinstance(parse("/preview up main"), Invalid)
    assert isinstance(parse("/preview up 1a2b3c4 5d6e7f8"), Invalid)
    assert str(parse("/preview up 1a2b3c4")) == "/preview up 1a2b3c4"


def test_a_plain_up_approves_a_head_pushed_before_the_comment() -> None:
    assert refusal(fork(), HEAD, None, T0 + timedelta(seconds=1)) is None


def test_a_plain_up_does_not_approve_a_head_pushed_after_the_comment() -> None:
    said = refusal(fork(head_pushed_at=T0 + timedelta(seconds=5)), HEAD, None, T0)
    assert said is not None
    assert f"`/preview up {HEAD[:12]}`" in said
    # The same second is not "before": GitHub's times are whole seconds.
    assert refusal(fork(), HEAD, None, T0) is not None
    assert refusal(fork(head_pushed_at=None), HEAD, None, T0) is not None, "no time, no guess"


def test_a_plain_up_does_not_approve_a_head_this_service_has_not_seen() -> None:
    said = refusal(fork(), NEWER, None, T0 + timedelta(hours=1))
    assert said is not None
    assert f"`/preview up {NEWER[:12]}`" in said


@given(st.integers(min_value=7, max_value=40))
def test_a_named_commit_is_approved_only_while_it_is_the_head(digits: int) -> None:
    assert refusal(fork(head_pushed_at=None), NEWER, NEWER[:digits], T0) is None
    said = refusal(fork(), NEWER, HEAD[:digits], T0 + timedelta(days=1))
    assert said is not None
    assert "is not this pull request's head any more" in said


def test_a_fork_deploys_only_the_approved_commit_and_digest() -> None:
    assert decide(fork(), SPEC, promoted()).verdict is Verdict.NEEDS_APPROVAL
    assert decide(fork(), SPEC, promoted(), requested=True).verdict is Verdict.NEEDS_APPROVAL
    approved = fork(approved_sha=HEAD)
    assert decide(approved, SPEC, promoted()).verdict is Verdict.DEPLOY  # binds on deploy
    bound = fork(approved_sha=HEAD, approved_image=IMAGE)
    assert decide(bound, SPEC, promoted()).verdict is Verdict.DEPLOY
    again = decide(bound, SPEC, promoted(OTHER))
    assert again.verdict is Verdict.NEEDS_APPROVAL
    assert "promoted again with another digest" in again.reason
    assert decide(bound, SPEC, None).verdict is Verdict.WAIT_FOR_IMAGE
