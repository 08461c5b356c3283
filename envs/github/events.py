"""GitHub webhook deliveries → jobs on the queue. Pure: no I/O, no GitHub calls.

The webhook answers within milliseconds, so this mapping only reads the
payload; everything that needs the spec, the store's history or the GitHub
API (permissions, fork approval) happens in the worker. Each payload is read
through small pydantic models that ignore the hundreds of fields we do not
use, so a new field from GitHub never breaks a delivery while a missing one
we need is a clear 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from envs.core.jobs import REPOSITORY_WIDE, NewJob
from envs.core.payloads import (
    BranchDeleted,
    CommentPayload,
    Payload,
    Promote,
    PullRequestSnapshot,
    Teardown,
)
from envs.github.commands import TRIGGER

# Actions that change what the environment should be; the rest (assigned,
# review_requested, locked, ...) never touch it.
PR_ACTIONS = frozenset(
    {
        "opened",
        "reopened",
        "synchronize",
        "ready_for_review",
        "converted_to_draft",
        "labeled",
        "unlabeled",
        "edited",
    }
)
PROMOTION_EVENTS = frozenset({"workflow_run", "check_suite"})
SUPPORTED_EVENTS = frozenset({"ping", "pull_request", "issue_comment", "delete"}) | PROMOTION_EVENTS


class PayloadInvalid(ValueError):
    """A signed delivery that lacks a field we need (answered 400)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_Model):
    login: str


class _Repo(_Model):
    full_name: str


class _Label(_Model):
    name: str


class _Ref(_Model):
    ref: str
    sha: str
    repo: _Repo | None = None  # None when the fork was deleted


# GitHub's numbers fit these; anything larger is not GitHub's, and must not reach the store.
MAX_NUMBER = 2**31 - 1
MAX_ID = 2**63 - 1


class _PullRequest(_Model):
    number: int = Field(gt=0, le=MAX_NUMBER)
    state: str
    draft: bool = False
    merged: bool | None = None
    head: _Ref
    base: _Ref
    user: _User
    labels: list[_Label] = []
    updated_at: AwareDatetime | None = None


class _PullRequestEvent(_Model):
    action: str
    pull_request: _PullRequest
    repository: _Repo
    sender: _User


class _Issue(_Model):
    number: int = Field(gt=0, le=MAX_NUMBER)
    pull_request: dict[str, Any] | None = None  # present only when the issue is a PR


class _Comment(_Model):
    id: int = Field(gt=0, le=MAX_ID)
    body: str | None = None
    user: _User
    created_at: AwareDatetime | None = None  # GitHub's clock: what a fork approval is timed by


class _CommentEvent(_Model):
    action: str
    issue: _Issue
    comment: _Comment
    repository: _Repo


class _Run(_Model):
    head_sha: str
    conclusion: str | None = None
    name: str | None = None


class _WorkflowRunEvent(_Model):
    action: str
    workflow_run: _Run
    repository: _Repo


class _CheckSuiteEvent(_Model):
    action: str
    check_suite: _Run
    repository: _Repo


class _DeleteEvent(_Model):
    ref: str
    ref_type: str
    repository: _Repo
    sender: _User


@dataclass(frozen=True)
class Accepted:
    """The jobs a delivery becomes; empty when GitHub told us something we ignore."""

    jobs: tuple[NewJob, ...]
    note: str


def _parse(model: type[_Model], payload: Mapping[str, Any], event: str) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PayloadInvalid(f"{event} payload: {where}: {first['msg']}") from None


def pr_snapshot(pr: _PullRequest, repository: str, action: str, sender: str) -> PullRequestSnapshot:
    """Everything the worker needs to know about the PR, as the delivery showed it."""
    head_repo = pr.head.repo.full_name if pr.head.repo else None
    return PullRequestSnapshot(
        number=pr.number,
        state=pr.state,
        head_sha=pr.head.sha,
        branch=pr.head.ref,
        author=pr.user.login,
        draft=pr.draft,
        fork=head_repo != repository,
        labels=tuple(sorted({label.name for label in pr.labels})),
        merged=bool(pr.merged),
        updated_at=pr.updated_at,
        action=action,
        sender=sender,
    )


def _job(payload: Payload, repository: str, pr_number: int, delivery_id: str) -> NewJob:
    return NewJob(payload.kind, repository, pr_number, payload.dump(), delivery_id=delivery_id)


def _pull_request_jobs(payload: Mapping[str, Any], delivery_id: str) -> Accepted:
    event: _PullRequestEvent = _parse(_PullRequestEvent, payload, "pull_request")
    repo, pr = event.repository.full_name, event.pull_request
    snapshot = pr_snapshot(pr, repo, event.action, event.sender.login)
    job_payload: Payload
    if event.action == "closed":
        reason = "merged" if snapshot.merged else "closed"
        job_payload = Teardown(reason=reason, actor=event.sender.login, pull_request=snapshot)
    elif event.action in PR_ACTIONS:
        job_payload = snapshot
    else:
        return Accepted((), f"pull_request action {event.action!r} is not used")
    return Accepted((_job(job_payload, repo, pr.number, delivery_id),), job_payload.kind)


def _comment_jobs(payload: Mapping[str, Any], delivery_id: str) -> Accepted:
    event: _CommentEvent = _parse(_CommentEvent, payload, "issue_comment")
    if event.action != "created":
        return Accepted((), f"issue_comment action {event.action!r} is not used")
    if event.issue.pull_request is None:
        return Accepted((), "comment on an issue, not a pull request")
    body = event.comment.body or ""
    if TRIGGER not in body.lower():
        return Accepted((), "no /preview command")
    said = CommentPayload(
        comment_id=event.comment.id,
        body=body[:65_536],
        author=event.comment.user.login,
        created_at=event.comment.created_at,
    )
    return Accepted(
        (_job(said, event.repository.full_name, event.issue.number, delivery_id),), "comment"
    )


def _promotion_jobs(event: str, payload: Mapping[str, Any], delivery_id: str) -> Accepted:
    if event == "workflow_run":
        parsed: Any = _parse(_WorkflowRunEvent, payload, event)
        run: _Run = parsed.workflow_run
    else:
        parsed = _parse(_CheckSuiteEvent, payload, event)
        run = parsed.check_suite
    if parsed.action != "completed" or run.conclusion != "success":
        return Accepted((), f"{event} {parsed.action}/{run.conclusion} is not a promotion")
    promoted = Promote(head_sha=run.head_sha, source=f"{event}:{run.name or ''}")
    job = _job(promoted, parsed.repository.full_name, REPOSITORY_WIDE, delivery_id)
    return Accepted((job,), "promotion signal")


def _delete_jobs(payload: Mapping[str, Any], delivery_id: str) -> Accepted:
    deleted: _DeleteEvent = _parse(_DeleteEvent, payload, "delete")
    if deleted.ref_type != "branch":
        return Accepted((), f"deleted {deleted.ref_type} is not used")
    gone = BranchDeleted(branch=deleted.ref, sender=deleted.sender.login)
    job = _job(gone, deleted.repository.full_name, REPOSITORY_WIDE, delivery_id)
    return Accepted((job,), "branch deleted")


def jobs_for(event: str, payload: Mapping[str, Any], delivery_id: str) -> Accepted:
    """Map one delivery to its jobs; raises PayloadInvalid for a payload we cannot use."""
    if event == "pull_request":
        return _pull_request_jobs(payload, delivery_id)
    if event == "issue_comment":
        return _comment_jobs(payload, delivery_id)
    if event in PROMOTION_EVENTS:
        return _promotion_jobs(event, payload, delivery_id)
    if event == "delete":
        return _delete_jobs(payload, delivery_id)
    if event == "ping":
        return Accepted((), "pong")
    return Accepted((), f"event {event!r} is not used")
