"""`/preview reseed [synthetic|anonymised]`: replace the database's data."""

from __future__ import annotations

from envs.core.payloads import Seed
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    mode = said.command.seed_mode.value if said.command.seed_mode else None
    said.handlers.enqueue(said.key, Seed(actor=said.author, mode=mode, comment_id=said.comment_id))
    return Outcome.QUEUED
