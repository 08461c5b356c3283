"""Remove the environment: a closed PR, the policy, `/preview destroy`, a deleted branch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.core.errors import OperationFailed
from envs.core.jobs import Job
from envs.core.model import EnvironmentStatus
from envs.core.payloads import Report, Teardown
from envs.worker.failures import Transient

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers


def run(handlers: Handlers, job: Job, payload: Teardown) -> None:
    if payload.pull_request is not None:  # a pull_request closed delivery
        handlers.save_snapshot(job.key, payload.pull_request, closed=True)
    actor = payload.actor or "preview-envs"
    env = handlers.store.get(job.key)
    if env is not None and env.status is not EnvironmentStatus.DESTROYED:
        runner = f"job:{job.id}"
        try:
            handlers.unlocking(
                job, lambda: handlers.lifecycle.down(job.key, actor, payload.reason, runner=runner)
            )
        except OperationFailed as exc:
            handlers.enqueue(job.key, Report())
            raise Transient.of(exc) from exc
    handlers.enqueue(job.key, Report(note=f"removed ({payload.reason})"))
    handlers.react_done(job, payload.comment_id, "rocket")
