"""What each kind of job carries: one typed, frozen model per kind. Pure.

A job's payload is stored as JSON and read back by attribute through these
models, never by string key: a field a producer forgot is a validation error
where it is written, not a ``KeyError`` in a worker hours later. Unknown
fields are ignored, so a job queued by an older version still runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from envs.core.jobs import JobKind


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: ClassVar[JobKind]

    def dump(self) -> dict[str, Any]:
        """The JSON the queue stores (None fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class PullRequestSnapshot(Payload):
    """A pull_request delivery: what the worker needs of the PR, as GitHub sent it."""

    kind: ClassVar[JobKind] = JobKind.PR_EVENT
    number: int
    state: str
    head_sha: str
    branch: str
    author: str
    draft: bool = False
    fork: bool = False
    labels: tuple[str, ...] = ()
    merged: bool = False
    updated_at: datetime | None = None  # GitHub's clock, when this head reached the PR
    action: str | None = None
    sender: str | None = None


class Teardown(Payload):
    """Remove the environment: a closed PR, the policy, `/preview destroy`, a deleted branch."""

    kind: ClassVar[JobKind] = JobKind.TEARDOWN
    reason: str = "requested"
    actor: str | None = None
    comment_id: int | None = None
    pull_request: PullRequestSnapshot | None = None  # when a closed delivery asked

    @model_validator(mode="before")
    @classmethod
    def _closed_delivery(cls, data: Any) -> Any:
        """A closed delivery's snapshot, written flat by versions before this model."""
        if isinstance(data, Mapping) and "head_sha" in data and "pull_request" not in data:
            return {
                "reason": data.get("reason", "closed"),
                "actor": data.get("actor") or data.get("sender"),
                "pull_request": dict(data),
            }
        return data


class Promote(Payload):
    """CI promoted an image for a commit (repository-wide)."""

    kind: ClassVar[JobKind] = JobKind.PROMOTE
    head_sha: str
    source: str = "ci"


class Deploy(Payload):
    """Roll out ``image`` at ``sha``; ``rollback``: a version that served before."""

    kind: ClassVar[JobKind] = JobKind.DEPLOY
    sha: str
    image: str
    actor: str
    comment_id: int | None = None
    rollback: bool = False


class Report(Payload):
    """Bring the sticky comment and the deployment up to date, with a note or an error."""

    kind: ClassVar[JobKind] = JobKind.REPORT
    note: str | None = None
    error: str | None = None
    awaiting: bool = False  # the note says what a newer version waits for (an approval)
    reply: str | None = None  # also said in a new comment (it notifies; an edit does not)


class CommentPayload(Payload):
    """An issue comment on a PR that may hold a `/preview` command."""

    kind: ClassVar[JobKind] = JobKind.COMMENT
    comment_id: int
    body: str
    author: str
    created_at: datetime | None = None  # GitHub's clock: what a fork approval is timed by


class BranchDeleted(Payload):
    kind: ClassVar[JobKind] = JobKind.BRANCH_DELETED
    branch: str
    sender: str | None = None


class Seed(Payload):
    """Fill the environment's database; ``mode`` None keeps the spec's."""

    kind: ClassVar[JobKind] = JobKind.SEED
    actor: str = "preview-envs"
    mode: str | None = None
    comment_id: int | None = None


PAYLOADS: Mapping[JobKind, type[Payload]] = {
    model.kind: model
    for model in (
        PullRequestSnapshot, Teardown, Promote, Deploy, Report, CommentPayload, BranchDeleted, Seed,
    )
}  # fmt: skip


def read(kind: JobKind, payload: Mapping[str, Any]) -> Payload:
    """A stored payload as its kind's model."""
    return PAYLOADS[kind].model_validate(payload)
