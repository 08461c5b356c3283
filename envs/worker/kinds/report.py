"""Bring the sticky comment and the GitHub deployment up to date from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.core.jobs import Job
from envs.core.payloads import Report

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers


def run(handlers: Handlers, job: Job, payload: Report) -> None:
    handlers.sync(job.key, note=payload.note, error=payload.error, awaiting=payload.awaiting)
    if payload.reply:  # after the sync: a retry after a failed sync must not say it twice
        handlers.github.reply(job.repository, job.pr_number, payload.reply)
