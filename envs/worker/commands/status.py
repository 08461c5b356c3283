"""`/preview status`: the sticky comment's table, as a reply."""

from __future__ import annotations

from envs.github.report import status_reply
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    said.reply(status_reply(said.handlers.situation(said.key)))
    return Outcome.DONE
