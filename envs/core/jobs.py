"""Jobs on the durable queue: what the worker is asked to do, and the rules of the queue.

Pure: the queue's policy (which job makes which older one pointless, how
long to wait before a retry) lives here so it can be tested without a
database; the store applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from envs.core.model import EnvironmentKey, parse_time, require_aware, required_time

REPOSITORY_WIDE = 0  # pr_number of a job that concerns a whole repository (promotions)


class JobKind(StrEnum):
    PR_EVENT = "pr_event"  # a pull_request delivery: bring the environment in line with the PR
    COMMENT = "comment"  # an issue_comment on a PR that may hold a /preview command
    PROMOTE = "promote"  # CI promoted an image for a head SHA (repository-wide)
    DEPLOY = "deploy"  # run the lifecycle's up for one SHA and image
    TEARDOWN = "teardown"  # run the lifecycle's down
    REPORT = "report"  # bring the sticky comment and the GitHub deployment up to date
    BRANCH_DELETED = "branch_deleted"  # tear down the environments of a deleted branch
    SEED = "seed"  # fill the environment's database (after the first deploy, or reseed)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"


# A new job of the key kind makes queued jobs of these kinds, for the same
# PR, pointless: a newer push replaces an older deploy, a teardown replaces
# any pending deploy, and the latest PR snapshot replaces older snapshots.
SUPERSEDES: Mapping[JobKind, frozenset[JobKind]] = {
    JobKind.PR_EVENT: frozenset({JobKind.PR_EVENT}),
    JobKind.DEPLOY: frozenset({JobKind.DEPLOY}),
    JobKind.TEARDOWN: frozenset({JobKind.DEPLOY, JobKind.PR_EVENT, JobKind.SEED}),
    JobKind.SEED: frozenset({JobKind.SEED}),
    JobKind.REPORT: frozenset({JobKind.REPORT}),
}

DEFAULT_MAX_ATTEMPTS = 5
# Reporting outlives a GitHub outage: with the 10-minute cap, 60 attempts span ~9 hours.
# So does a comment command: its first step (the 👀 reaction) is a GitHub call, and a
# `/preview destroy` said during an outage must still run when GitHub is back.
MAX_ATTEMPTS: Mapping[JobKind, int] = {JobKind.REPORT: 60, JobKind.COMMENT: 60}
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_CAP = timedelta(minutes=10)


def backoff(
    attempts: int, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP
) -> timedelta:
    """Delay before retry number ``attempts`` (1-based): doubling from base, capped."""
    if attempts < 1:
        raise ValueError("attempts starts at 1")
    delay: timedelta = base * (2 ** min(attempts - 1, 30))
    return min(delay, cap)


@dataclass(frozen=True)
class NewJob:
    kind: JobKind
    repository: str
    pr_number: int = REPOSITORY_WIDE
    payload: Mapping[str, Any] = field(default_factory=dict)
    max_attempts: int | None = None  # None: the kind's default
    delivery_id: str | None = None

    @property
    def attempts_allowed(self) -> int:
        return self.max_attempts or MAX_ATTEMPTS.get(self.kind, DEFAULT_MAX_ATTEMPTS)


@dataclass(frozen=True)
class Job:
    id: int
    kind: JobKind
    repository: str
    pr_number: int
    payload: Mapping[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    run_after: datetime
    created_at: datetime
    updated_at: datetime
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    delivery_id: str | None = None

    @property
    def key(self) -> EnvironmentKey:
        return EnvironmentKey(self.repository, self.pr_number)

    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts

    @classmethod
    def from_row(cls, row: Mapping[str, Any], payload: Mapping[str, Any]) -> Job:
        return cls(
            id=int(row["id"]),
            kind=JobKind(row["kind"]),
            repository=row["repository"],
            pr_number=int(row["pr_number"]),
            payload=payload,
            status=JobStatus(row["status"]),
            attempts=int(row["attempts"]),
            max_attempts=int(row["max_attempts"]),
            run_after=required_time(row["run_after"]),
            created_at=required_time(row["created_at"]),
            updated_at=required_time(row["updated_at"]),
            lease_owner=row["lease_owner"],
            lease_expires_at=parse_time(row["lease_expires_at"]),
            last_error=row["last_error"],
            delivery_id=row["delivery_id"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "repository": self.repository,
            "pr_number": self.pr_number or None,
            "status": self.status.value,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "run_after": self.run_after.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "lease_owner": self.lease_owner,
            "last_error": self.last_error,
            "delivery_id": self.delivery_id,
            "payload": dict(self.payload),
        }


@dataclass(frozen=True)
class PullRequest:
    """What the service knows of a PR, learnt from its webhooks."""

    repository: str
    pr_number: int
    state: str  # open | closed
    head_sha: str
    branch: str
    author: str
    draft: bool
    fork: bool
    labels: tuple[str, ...]
    updated_at: datetime
    # A fork PR's approval: the commit a maintainer approved, and the image digest it
    # covers (None until the first deploy of that commit binds it).
    approved_sha: str | None = None
    approved_image: str | None = None
    # When GitHub says the head commit reached the PR (the pull_request payload's
    # updated_at at the delivery that first showed it): GitHub's clock, as is a
    # comment's created_at, so "pushed before the approving comment" is one comparison.
    head_pushed_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "updated_at", require_aware(self.updated_at, "updated_at"))
        if self.head_pushed_at is not None:
            require_aware(self.head_pushed_at, "head_pushed_at")

    def approves(self, sha: str, image: str | None) -> bool:
        """Whether the recorded approval covers deploying ``image`` at ``sha``."""
        if self.approved_sha != sha:
            return False
        return self.approved_image is None or image is None or self.approved_image == image

    @property
    def key(self) -> EnvironmentKey:
        return EnvironmentKey(self.repository, self.pr_number)


@dataclass(frozen=True)
class Promotion:
    repository: str
    head_sha: str
    image: str
    promoted_by: str
    promoted_at: datetime


@dataclass(frozen=True)
class GitHubLinks:
    """The GitHub objects kept per PR so they are edited, never duplicated."""

    repository: str
    pr_number: int
    comment_id: int | None = None
    deployment_id: int | None = None
    deployment_sha: str | None = None
    deployment_state: str | None = None  # the last status posted, so it is posted once
    # The deployment whose version serves (its last status was success); after a failed
    # rollout it is not the latest one, and teardown must retire it too.
    serving_deployment_id: int | None = None
