"""A deleted branch: tear down the live environments built from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.core.jobs import Job
from envs.core.payloads import BranchDeleted, Teardown

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers


def run(handlers: Handlers, job: Job, payload: BranchDeleted) -> None:
    for env in handlers.store.environments(repository=job.repository):
        if env.branch == payload.branch and env.status.is_live:
            handlers.enqueue(env.key, Teardown(reason="branch deleted", actor=payload.sender))
