"""A composite column's checks, read as checks of its fields (pure).

``CHECK ((home).postcode ~ '^[A-Z]{2}[0-9]{3}$')`` holds of one field alone:
read as a check of a column ``postcode``, that field gets values the way a
column under the check does (:mod:`seeders.synthetic.checks`), where a whole invented
address would almost never pass. A check that reads two fields, or the
whole value (``home IS NOT NULL``), stays the whole column's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from seeders.schema.model import Check, Column

_IDENT = r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*'
# A string literal (left as it is), a field selection ``(home).postcode`` as
# the server writes it (either name quoted where it must be), or a name.
_TOKEN = re.compile(
    rf"'(?:[^']|'')*'|\(\s*(?P<of>{_IDENT})\s*\)\.(?P<field>{_IDENT})|(?P<name>{_IDENT})"
)


def _name(token: str) -> str:
    return token[1:-1].replace('""', '"') if token.startswith('"') else token


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def field_checks(column: Column, checks: Sequence[Check]) -> dict[str, list[Check]]:
    """Field name → the checks of ``column`` that read that field and nothing else of it.

    Each is rewritten to name the field as a column: ``(home).postcode``
    becomes ``"postcode"``, for a candidate cast to the field's type.
    """
    names = {f.name for f in column.fields}
    found: dict[str, list[Check]] = {}
    for check in checks:
        condition, read = _of_fields(column.name, check.condition)
        if len(read) == 1 and read <= names:
            (name,) = read
            rewritten = Check(check.name, f"CHECK {condition}", (name,), check.domain)
            found.setdefault(name, []).append(rewritten)
    return found


def _of_fields(column: str, condition: str) -> tuple[str, set[str]]:
    """The condition with each field of ``column`` named bare, and those fields.

    No fields at all if it reads the whole value too.
    """
    read: set[str] = set()
    whole = False

    def bare(match: re.Match[str]) -> str:
        nonlocal whole
        if match["of"] is not None and _name(match["of"]) == column:
            read.add(_name(match["field"]))
            return _quoted(_name(match["field"]))
        if match["name"] is not None and _name(match["name"]) == column:
            whole = True
        return match.group()

    rewritten = _TOKEN.sub(bare, condition)
    return rewritten, set() if whole else read
