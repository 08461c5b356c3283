"""Loads the named queries in ``queries.sql`` for one SQL dialect."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_]+)(?:@([a-z]+))?\s*$", re.MULTILINE)


@cache
def named_queries(dialect: str) -> dict[str, str]:
    """Query name → SQL, with ``name@dialect`` overriding the shared text."""
    text = resources.files("envs.store").joinpath("queries.sql").read_text(encoding="utf-8")
    shared: dict[str, str] = {}
    specific: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = text[match.end() : end].strip()
        target = specific if match.group(2) == dialect else shared if not match.group(2) else None
        if target is not None:
            target[match.group(1)] = body
    return shared | specific
