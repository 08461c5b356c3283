"""What the PR shows: the sticky comment's text and the GitHub deployment state. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from envs.core.jobs import PullRequest
from envs.core.model import AuditEntry, Environment, EnvironmentKey, EnvironmentStatus, Operation
from envs.github.commands import HELP_TEXT

_ICON = {
    EnvironmentStatus.PROVISIONING: "⏳",
    EnvironmentStatus.READY: "✅",
    EnvironmentStatus.FAILED: "❌",
    EnvironmentStatus.DESTROYING: "🧹",
    EnvironmentStatus.DESTROYED: "🗑️",
}

# GitHub deployment status for each environment status.
DEPLOYMENT_STATE = {
    EnvironmentStatus.PROVISIONING: "in_progress",
    EnvironmentStatus.READY: "success",
    EnvironmentStatus.FAILED: "failure",
    EnvironmentStatus.DESTROYING: "inactive",
    EnvironmentStatus.DESTROYED: "inactive",
}


@dataclass(frozen=True)
class Situation:
    """Everything the comment is rendered from, read from the store by the worker."""

    environment: Environment | None
    pull_request: PullRequest | None
    note: str | None = None  # why nothing is deployed yet, or what is happening
    error: str | None = None  # the last failure, in full
    now: datetime | None = None
    last_good: Operation | None = None  # the newest successful up: what serves after a failure
    seed: str | None = None  # the last seeding, one line
    # The note says what a newer version waits for (a maintainer's approval): shown even
    # while an older version serves, where other notes would be stale.
    awaiting: bool = False


def environment_name(key: EnvironmentKey) -> str:
    """The GitHub deployment environment: one transient environment per PR."""
    return f"preview/pr-{key.pr_number}"


def _code(text: str) -> str:
    """Untrusted text (errors, branch names) inside a fenced block, never as markdown.

    The fence is longer than any run of backticks in the text (CommonMark
    closes a fence only with at least as many), so no column name or error
    of the pull request's can close it and write markdown (a link) after it.
    """
    body = text.strip()[:3000]
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


def _inline(text: str) -> str:
    return "`" + text.replace("`", "'")[:200] + "`"


def sticky_body(situation: Situation) -> str:
    env, pr = situation.environment, situation.pull_request
    lines = ["### Preview environment", ""]
    if env is None:
        lines.append(f"⏳ **Not deployed.** {situation.note or 'Nothing has been requested yet.'}")
    else:
        state = f"{_ICON[env.status]} **{env.status.value}**"
        if situation.note and env.status is not EnvironmentStatus.READY:
            state += f" — {situation.note}"
        lines += [
            "| | |",
            "|---|---|",
            f"| State | {state} |",
        ]
        if env.url and env.status is EnvironmentStatus.READY:
            lines.append(f"| URL | {env.url} |")
        if env.head_sha:
            lines.append(f"| Commit | {_inline(env.head_sha[:12])} |")
        if env.image:
            lines.append(f"| Image | {_inline(env.image)} |")
        lines.append(f"| Namespace | {_inline(env.namespace)} |")
        if situation.seed:
            lines.append(f"| Data | {situation.seed} |")
        if env.status.is_live:
            lines.append(f"| Expires | {env.expires_at:%Y-%m-%d %H:%M} UTC |")
    good = situation.last_good
    if (
        env is not None
        and env.status is EnvironmentStatus.FAILED
        and good is not None
        and good.head_sha != env.head_sha
        and env.url
    ):
        serving = _inline((good.head_sha or "")[:12])
        lines += ["", f"The previous version (commit {serving}) keeps serving at {env.url}."]
    if pr is not None and env is not None and env.head_sha and pr.head_sha != env.head_sha:
        pending = f"Newer commit {_inline(pr.head_sha[:12])} is not deployed yet"
        lines += ["", f"{pending}: {situation.note}." if situation.note else f"{pending}."]
    elif situation.awaiting and situation.note and env is not None:
        lines += ["", f"🔒 Not deployed: {situation.note}."]
    error = situation.error or (
        env.last_error if env is not None and env.status is EnvironmentStatus.FAILED else None
    )
    if error:
        lines += ["", "**Last error**", "", _code(error)]
    lines += ["", "<details><summary>Commands</summary>", "", HELP_TEXT, "</details>"]
    return "\n".join(lines)


def seed_line(entry: AuditEntry | None) -> str | None:
    """The sticky comment's "Data" row from the last seeding's audit entry."""
    if entry is None:
        return None
    detail = entry.detail
    mode = str(detail.get("mode", "?"))
    if entry.action == "seed.succeeded":
        rows, tables = int(detail.get("total_rows", 0)), int(detail.get("tables", 0))
        at = f"({entry.at:%Y-%m-%d %H:%M} UTC)"
        if mode == "anonymised":  # its row count is the source's: not for the PR
            return f"{mode}: {tables} tables {at}"
        return f"{mode}: {rows:,} rows in {tables} tables {at}"
    return f"{mode} seeding failed ({entry.at:%Y-%m-%d %H:%M} UTC); see Last error"


def status_reply(situation: Situation) -> str:
    body = sticky_body(situation)
    return body.split("<details>", 1)[0].rstrip()
