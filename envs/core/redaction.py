"""Database connection strings made safe to print: every form a password can take. Pure.

A DSN reaches messages in three forms, and a password hides differently in
each: a URL's user info (``postgresql://app:s3cret@db/app``, where an
unencoded ``@`` or ``/`` in the password makes the last ``@`` before the
path the separator, as libpq reads it), a URL's query (``?password=s3cret``)
and libpq's keyword form (``host=db password='it''s'``). And a driver's own
error can quote any piece of a DSN it could not parse, so :func:`scrub`
removes the password's text itself from a message, whatever surrounds it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

HIDDEN = "***"
_BACKSLASHED = re.compile(r"\\(.)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.|'')*'?|\S*)", re.IGNORECASE)


def _authority_end(rest: str) -> int:
    """Where a URL's authority ends: the first / ? # after the last @ (libpq's reading)."""
    start = rest.rfind("@") + 1
    ends = [i for i in (rest.find(c, start) for c in "/?#") if i != -1]
    return min(ends) if ends else len(rest)


def passwords(dsn: str) -> list[str]:
    """Every password text in ``dsn``, as written and decoded (what a message could quote)."""
    found: list[str] = []
    scheme = _SCHEME.match(dsn)
    if scheme:
        rest = dsn[scheme.end() :]
        userinfo = rest[: _authority_end(rest)].rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
        found += [m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(dsn)]
    else:
        for match in _KEYWORD_PASSWORD.finditer(dsn):
            value = match.group(2)
            found.append(value)
            if value.startswith("'"):
                inner = value[1:-1] if len(value) > 1 and value.endswith("'") else value[1:]
                found += [inner, _BACKSLASHED.sub(r"\1", inner)]  # libpq's escapes undone
    found += [unquote(p) for p in found]
    return sorted({p for p in found if p}, key=len, reverse=True)


def redact(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***``, in whichever form it is written."""
    scheme = _SCHEME.match(dsn)
    if not scheme:
        return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + HIDDEN, dsn)
    rest = dsn[scheme.end() :]
    end = _authority_end(rest)
    user, at, host = rest[:end].rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":" + HIDDEN
    tail = _QUERY_PASSWORD.sub(lambda m: m.group(1) + HIDDEN, rest[end:])
    return dsn[: scheme.end()] + user + at + host + tail


def scrub(text: str, dsn: str) -> str:
    """``text`` (an error, a log line) with ``dsn`` and any password in it made safe."""
    text = text.replace(dsn, redact(dsn))
    for secret in passwords(dsn):
        text = text.replace(secret, HIDDEN)
    return text
