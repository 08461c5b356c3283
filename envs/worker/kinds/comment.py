"""A comment that may hold a `/preview` command: who may, first; only then what it says.

An author below the spec's permission gets the refusal and nothing else,
however the command is written: no help text, no parse error, nothing the
bot can be made to post for them. An accepted command runs through its
module in :mod:`envs.worker.commands`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.core.jobs import Job
from envs.core.payloads import CommentPayload
from envs.github.client import permission_at_least
from envs.github.commands import HELP_TEXT, Command, mentions_command, parse
from envs.worker.commands import RUNNERS, Outcome, Said

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers


def run(handlers: Handlers, job: Job, payload: CommentPayload) -> None:
    github, repo, number = handlers.github, job.repository, job.pr_number
    author, comment_id = payload.author, payload.comment_id
    if not mentions_command(payload.body):
        return
    github.react(repo, number, comment_id, "eyes")
    needed = handlers.spec_of(job.key).commands.min_permission
    granted = github.permission(repo, author)
    parsed = parse(payload.body)
    said = str(parsed) if isinstance(parsed, Command) else "/preview (malformed)"
    if not permission_at_least(granted, needed):
        handlers.store.audit(
            author, "command.refused", handlers.clock(), job.key, {"command": said}
        )
        github.reply(
            repo,
            number,
            f"Sorry @{author}, `/preview` commands need **{needed.value}** access to this "
            f"repository (you have {granted}). A maintainer can run it for you.",
        )
        github.react(repo, number, comment_id, "confused")
        return
    if not isinstance(parsed, Command):
        reason = parsed.reason if parsed is not None else "no command found"
        github.reply(repo, number, f"@{author} {reason}.\n\n{HELP_TEXT}")
        github.react(repo, number, comment_id, "confused")
        return
    accepted = {"command": said, "permission": granted, "comment_id": comment_id}
    handlers.store.audit(author, "command.accepted", handlers.clock(), job.key, accepted)
    written = payload.created_at or job.created_at
    outcome = RUNNERS[parsed.verb](Said(handlers, job, parsed, author, comment_id, written))
    if outcome is Outcome.DONE:
        github.react(repo, number, comment_id, "rocket")
