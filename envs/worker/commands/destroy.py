"""`/preview destroy`: tear the environment down now."""

from __future__ import annotations

from envs.core.jobs import JobKind
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    said.handlers.enqueue(JobKind.TEARDOWN, said.key, {"reason": "/preview destroy"} | said.done)
    return Outcome.QUEUED
