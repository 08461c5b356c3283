"""`/preview reseed [synthetic|anonymised]`: replace the database's data."""

from __future__ import annotations

from envs.core.jobs import JobKind
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    mode = said.command.seed_mode.value if said.command.seed_mode else None
    said.handlers.enqueue(JobKind.SEED, said.key, {"mode": mode} | said.done)
    return Outcome.QUEUED
