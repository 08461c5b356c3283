"""Whether a maintainer's `/preview up` approves a fork PR's head. Pure.

A fork's code runs next to data shaped like production, so an approval
covers exactly the commit the maintainer reviewed, and the image CI promoted
for it (see ADR 0009). GitHub's ``issue_comment`` payload carries no head
SHA, so the commit a plain `/preview up` meant is inferred from GitHub's
own clock: the head the service knows, if it reached the PR before the
comment was written and is still the head now. Anything else is refused
with the command that approves the current head by name.
"""

from __future__ import annotations

from datetime import datetime

from envs.core.jobs import PullRequest


def refusal(pr: PullRequest, head: str, named: str | None, commented_at: datetime) -> str | None:
    """Why the comment does not approve ``head`` (GitHub's head now); None if it does.

    ``named`` is the commit a `/preview up <sha>` names (a hex prefix);
    ``commented_at`` is the comment's ``created_at``. Only called for forks.
    """
    exact = f"`/preview up {head[:12]}`"
    if named is not None:
        if head.startswith(named):
            return None
        return (
            f"commit {named[:12]} is not this pull request's head any more (it is {head[:12]})."
            f" Review that commit, then {exact} approves it."
        )
    if pr.head_sha != head:
        return (
            f"the head moved to {head[:12]} after the last push this service saw; nothing was"
            f" deployed. Review it, then {exact} approves exactly that commit."
        )
    if pr.head_pushed_at is None or pr.head_pushed_at >= commented_at:
        return (
            f"commit {head[:12]} may have been pushed after your comment; nothing was deployed."
            f" Review it, then {exact} approves exactly that commit."
        )
    return None
