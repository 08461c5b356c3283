"""What the worker does with each kind of job: one module each, registered once in :data:`KINDS`.

Every module's ``run`` takes the handlers (the services and helpers jobs
share), the job, and its payload read into that kind's model
(:mod:`envs.core.payloads`). Each is safe to run twice: a worker killed
mid-job is replaced by another that runs the same job again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from envs.core.jobs import JobKind
from envs.worker.kinds import (
    branch_deleted,
    comment,
    deploy,
    pr_event,
    promote,
    report,
    seed,
    teardown,
)

KINDS: Mapping[JobKind, Callable[..., None]] = {
    JobKind.PR_EVENT: pr_event.run,
    JobKind.PROMOTE: promote.run,
    JobKind.DEPLOY: deploy.run,
    JobKind.TEARDOWN: teardown.run,
    JobKind.SEED: seed.run,
    JobKind.REPORT: report.run,
    JobKind.COMMENT: comment.run,
    JobKind.BRANCH_DELETED: branch_deleted.run,
}

__all__ = ["KINDS"]
