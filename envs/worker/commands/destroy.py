"""`/preview destroy`: tear the environment down now."""

from __future__ import annotations

from envs.core.payloads import Teardown
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    said.handlers.enqueue(
        said.key,
        Teardown(reason="/preview destroy", actor=said.author, comment_id=said.comment_id),
    )
    return Outcome.QUEUED
