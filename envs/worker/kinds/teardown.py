"""Remove the environment: a closed PR, the policy, `/preview destroy`, a deleted branch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from envs.core.errors import OperationFailed
from envs.core.jobs import Job
from envs.core.model import EnvironmentStatus
from envs.core.payloads import Report, Teardown
from envs.github.client import GitHubUnavailable
from envs.github.report import environment_name
from envs.worker.failures import Transient

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers

log = logging.getLogger(__name__)


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
    if payload.pull_request is not None:
        # The PR is closed: its GitHub environment would be left behind for ever,
        # one per PR, by the thousand. A reopened PR gets a new one.
        _delete_environment(handlers, job)
    handlers.react_done(job, payload.comment_id, "rocket")


def _delete_environment(handlers: Handlers, job: Job) -> None:
    name = environment_name(job.key)
    try:
        deleted = handlers.github.delete_environment(job.repository, name)
    except GitHubUnavailable as exc:  # the deployments are inactive; gc may retry later
        log.warning("could not delete the GitHub environment %s: %s", name, exc)
        return
    if not deleted:
        log.info("GitHub environment %s not deleted (gone, or no Administration: write)", name)
