"""A pull_request delivery: record the PR as GitHub sent it, then decide what its head needs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from envs.core.jobs import Job
from envs.core.payloads import PullRequestSnapshot

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers

log = logging.getLogger(__name__)


def run(handlers: Handlers, job: Job, payload: PullRequestSnapshot) -> None:
    previous = handlers.store.pull_requests.get(job.key)
    if previous is not None and previous.state == "closed" and payload.action != "reopened":
        # GitHub may deliver a `labeled` sent before the close after it: only a
        # reopen brings a closed pull request's environment back.
        log.info("%s: %s after the close ignored", job.key, payload.action)
        return
    pr = handlers.save_snapshot(job.key, payload)
    handlers.consider(pr, actor=payload.sender or pr.author)
