"""What a command's runner is given, and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from envs.core.jobs import Job
from envs.core.model import EnvironmentKey
from envs.github.commands import Command

if TYPE_CHECKING:  # the handlers run the commands; the commands use their helpers
    from envs.worker.handlers import Handlers


class Outcome(Enum):
    DONE = "done"  # finished now: the comment gets its 🚀
    QUEUED = "queued"  # a job was queued; it reacts when it is done
    ANSWERED = "answered"  # refused or replied to; nothing more to say


@dataclass(frozen=True)
class Said:
    """One accepted command: who said it, on which PR, through which job."""

    handlers: Handlers
    job: Job
    command: Command
    author: str
    comment_id: int
    commented_at: datetime  # GitHub's clock (else the delivery's): what a fork approval is timed by

    @property
    def key(self) -> EnvironmentKey:
        return self.job.key

    def reply(self, body: str) -> None:
        self.handlers.github.reply(self.job.repository, self.job.pr_number, body)

    def refuse(self, reason: str) -> Outcome:
        self.reply(f"@{self.author} {reason}")
        self.handlers.github.react(
            self.job.repository, self.job.pr_number, self.comment_id, "confused"
        )
        return Outcome.ANSWERED
