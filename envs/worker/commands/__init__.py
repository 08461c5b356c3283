"""`/preview` commands: one module each, registered once in :data:`RUNNERS`.

A command's module says what it does with an accepted command (the author
already holds the permission, the parser already read its arguments) and
whether it is done now or a job it queued reacts when it is. Adding a
command is a verb in :mod:`envs.github.commands` (its name, arguments and
help line) and a module here with its entry below; no other branch changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from envs.github.commands import Verb
from envs.worker.commands import destroy, extend, help, reseed, rollback, status, up
from envs.worker.commands.said import Outcome, Said

Runner = Callable[[Said], Outcome]

RUNNERS: Mapping[Verb, Runner] = {
    Verb.UP: up.run,
    Verb.REDEPLOY: up.run,
    Verb.RESEED: reseed.run,
    Verb.EXTEND: extend.run,
    Verb.DESTROY: destroy.run,
    Verb.ROLLBACK: rollback.run,
    Verb.STATUS: status.run,
    Verb.HELP: help.run,
}

__all__ = ["RUNNERS", "Outcome", "Runner", "Said"]
