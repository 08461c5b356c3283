"""`/preview extend <duration>`: keep the environment longer (the parser caps it)."""

from __future__ import annotations

from envs.core.errors import NotFound, OperationFailed
from envs.core.payloads import Report
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    duration = said.command.duration
    assert duration is not None  # the parser guarantees it
    try:
        said.handlers.lifecycle.extend(said.key, duration, said.author)
    except (NotFound, OperationFailed) as exc:
        return said.refuse(f"{exc}.")
    said.handlers.enqueue(said.key, Report())
    return Outcome.DONE
