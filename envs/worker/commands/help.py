"""`/preview help`: the list of commands."""

from __future__ import annotations

from envs.github.commands import HELP_TEXT
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    said.reply(HELP_TEXT)
    return Outcome.DONE
