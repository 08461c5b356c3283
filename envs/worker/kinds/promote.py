"""CI promoted an image for a commit: every open PR at that commit is considered again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.core.jobs import Job
from envs.core.payloads import Promote

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers


def run(handlers: Handlers, job: Job, payload: Promote) -> None:
    for pr in handlers.store.pull_requests.open_at_sha(job.repository, payload.head_sha):
        handlers.consider(pr, actor=payload.source)
