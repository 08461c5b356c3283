"""``/preview`` comment commands: parsing is a pure function of the comment body.

Only a line that *starts* with ``/preview`` in a paragraph counts, read as
GitHub renders the comment, so quoting, fencing or hiding someone's command
never runs it again. The
first such line wins; anything malformed becomes :class:`Invalid`, which the
worker answers with the help text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from markdown_it import MarkdownIt

from envs.core.spec import SeedMode, format_duration, parse_duration

MAX_BODY = 65_536
MAX_EXTENSION = timedelta(days=30)
TRIGGER = "/preview"
_SHA = re.compile(r"[0-9a-fA-F]{7,40}")


class Verb(StrEnum):
    UP = "up"
    REDEPLOY = "redeploy"
    RESEED = "reseed"
    EXTEND = "extend"
    DESTROY = "destroy"
    ROLLBACK = "rollback"
    STATUS = "status"
    HELP = "help"


@dataclass(frozen=True)
class Command:
    verb: Verb
    seed_mode: SeedMode | None = None  # reseed: None keeps the configured mode
    duration: timedelta | None = None  # extend
    sha: str | None = None  # up: the commit approved (a prefix, lower-case hex)

    def __str__(self) -> str:
        extra = (
            self.seed_mode
            or (format_duration(self.duration) if self.duration else "")
            or (self.sha or "")
        )
        return f"{TRIGGER} {self.verb.value}{' ' + extra if extra else ''}"


@dataclass(frozen=True)
class Invalid:
    reason: str


HELP_TEXT = """\
**Preview commands** (repository writers and above):

| Command | What it does |
|---|---|
| `/preview up [sha]` | Deploy this PR; on a fork PR, approves that commit (the head you reviewed) |
| `/preview redeploy` | Deploy the current head commit again |
| `/preview reseed [synthetic\\|anonymised]` | Reload the database |
| `/preview extend <duration>` | Keep the environment longer, e.g. `48h` or `2d` (at most 30d) |
| `/preview rollback` | Serve again the last version that became ready before this one |
| `/preview destroy` | Remove the environment now |
| `/preview status` | Show the environment's state |
| `/preview help` | This text |
"""

_SEED_MODES = {
    "synthetic": SeedMode.SYNTHETIC,
    "anonymised": SeedMode.ANONYMISED,
    "anonymized": SeedMode.ANONYMISED,
}


_MARKDOWN = MarkdownIt("commonmark")
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)


def _command_line(body: str) -> str | None:
    """The first line of a top-level paragraph that starts with ``/preview``.

    Read as GitHub renders the comment (CommonMark): a command in a quote, a
    list, a fenced or indented code block, an HTML comment or a collapsed
    ``<details>`` is shown, quoted or hidden, not said, so it never runs.
    """
    hidden = 0  # open <details> blocks
    for token in _MARKDOWN.parse(body[:MAX_BODY]):
        if token.type == "html_block":
            text = token.content.lower()
            hidden = max(0, hidden + text.count("<details") - text.count("</details"))
        elif token.type == "inline" and token.level == 1 and not hidden:
            for raw in _HTML_COMMENT.sub("", token.content).splitlines():
                line = raw.strip()
                head = line.split(maxsplit=1)[0] if line else ""
                if head.lower() == TRIGGER:
                    return line
    return None


def mentions_command(body: str) -> bool:
    """Whether the comment says a `/preview` command at all (before anything is parsed)."""
    return _command_line(body) is not None


def parse(body: str) -> Command | Invalid | None:
    """The command in a comment, ``Invalid`` if it is malformed, None if there is none."""
    line = _command_line(body)
    if line is None:
        return None
    if any(ord(ch) < 32 and ch != "\t" for ch in line):
        return Invalid("the command contains control characters")
    words = line.split()[1:]
    if not words:
        return Invalid("a verb is missing after /preview")
    verb_text, args = words[0].lower(), words[1:]
    try:
        verb = Verb(verb_text)
    except ValueError:
        return Invalid(f"unknown command {verb_text[:40]!r}")
    return _ARGUMENTS.get(verb, _bare)(verb, args)


def _bare(verb: Verb, args: list[str]) -> Command | Invalid:
    if args:
        return Invalid(f"'{verb.value}' takes no arguments")
    return Command(verb)


def _reseed(verb: Verb, args: list[str]) -> Command | Invalid:
    if len(args) > 1 or (args and args[0].lower() not in _SEED_MODES):
        return Invalid("reseed takes 'synthetic' or 'anonymised' (or nothing)")
    return Command(verb, seed_mode=_SEED_MODES[args[0].lower()] if args else None)


def _extend(verb: Verb, args: list[str]) -> Command | Invalid:
    if len(args) != 1:
        return Invalid("extend takes one duration, e.g. '/preview extend 48h'")
    try:
        duration = parse_duration(args[0].lower())
    except ValueError as exc:
        if "longer than any duration" in str(exc):
            return Invalid(f"extend is limited to {format_duration(MAX_EXTENSION)} at a time")
        return Invalid(f"{args[0][:20]!r} is not a duration; use e.g. 48h, 2d or 90m")
    if duration > MAX_EXTENSION:
        return Invalid(f"extend is limited to {format_duration(MAX_EXTENSION)} at a time")
    return Command(verb, duration=duration)


def _up(verb: Verb, args: list[str]) -> Command | Invalid:
    if len(args) > 1:
        return Invalid("up takes at most one commit, e.g. '/preview up 1a2b3c4'")
    if args and not _SHA.fullmatch(args[0]):
        return Invalid(f"{args[0][:20]!r} is not a commit; use 7 to 40 hex digits")
    return Command(verb, sha=args[0].lower() if args else None)


# Each verb's arguments, parsed by its own function; a verb not listed takes none.
_ARGUMENTS = {Verb.RESEED: _reseed, Verb.EXTEND: _extend, Verb.UP: _up}
