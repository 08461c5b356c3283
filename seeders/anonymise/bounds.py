"""The range a column's CHECK constraints keep its numbers in, read from their text. Pure.

Noise moves a number by a fraction of itself; under ``CHECK (discount
BETWEEN 0 AND 100)`` a discount of 100 noised up fails the whole copy. The
anonymiser keeps noised values inside the range these bounds give. Only
comparisons of the column with a number, joined by AND, are read (the
form the server writes ``BETWEEN``, ``>= 0`` and ``> 0.5`` in); anything
else in a check adds no bound, so a bound is only ever one the check
really has. The same for dates and times, whose bounds are a literal or
the current date or time (``CHECK (born_on <= CURRENT_DATE)``): a shifted
date must not land in the future.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from decimal import Decimal

from seeders.schema.model import Category, Check, Column

_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
_CAST = r"(?:::[a-z ]+(?:\(\d+(?:,\s*\d+)?\))?)?"
# The column, bare or cast ((rating)::numeric), or a number as the server
# writes it: 5, 0.5, (0)::numeric, '-5'::integer, (- 5).
_COLUMN = rf"\(?(?P<{{side}}c>{_IDENT})\)?{_CAST}"
_NUMBER = rf"\(?'?(?P<{{side}}n>-?\s?\d+(?:\.\d+)?)'?\)?{_CAST}"
_SIDE = "(?:" + _COLUMN + "|" + _NUMBER + ")"
_COMPARISON = re.compile(
    r"^\(?" + _SIDE.format(side="l") + r"\s(?P<op><=|>=|<|>)\s" + _SIDE.format(side="r") + r"\)?$"
)
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}

Bounds = tuple[Decimal | None, Decimal | None]


def _unquoted(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _conjuncts(text: str) -> list[str] | None:
    """The parts of a top-level AND; None if an OR (or anything unbalanced) is in the way."""
    text = text.strip()
    while text.startswith("(") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    parts, depth, start, quoted, i = [], 0, 0, False, 0
    while i < len(text):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(" AND ", i):
            parts.append(text[start:i])
            start = i = i + 5
            continue
        elif not quoted and depth == 0 and text.startswith(" OR ", i):
            return None
        i += 1
    return [*parts, text[start:]] if depth == 0 and not quoted else None


def _closing(text: str, opening: int) -> int:
    depth, quoted = 0, False
    for i in range(opening, len(text)):
        if text[i] == "'":
            quoted = not quoted
        elif not quoted and text[i] == "(":
            depth += 1
        elif not quoted and text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _step(column: Column, scale: int | None) -> Decimal | None:
    """How far inside a strict bound the nearest value is; None for a float (nextafter)."""
    if column.category is Category.INTEGER:
        return Decimal(1)
    if column.category is Category.NUMERIC and scale is not None:
        return Decimal(1).scaleb(-scale)
    return None


def _inside(value: Decimal, upward: bool, column: Column, scale: int | None) -> Decimal:
    step = _step(column, scale)
    if step is not None:
        return value + step if upward else value - step
    return Decimal(repr(math.nextafter(float(value), math.inf if upward else -math.inf)))


def of(column: Column, checks: Iterable[Check], scale: int | None = None) -> Bounds:
    """(lowest, highest) value the checks allow the column, inclusive; None where unbounded.

    ``scale`` is the decimals a numeric value is rounded to (a strict bound's
    nearest value inside it is one such step away).
    """
    if column.category not in (Category.INTEGER, Category.NUMERIC, Category.FLOAT):
        return None, None
    low: Decimal | None = None
    high: Decimal | None = None
    for check in checks:
        for part in _conjuncts(check.condition) or ():
            found = _COMPARISON.match(part.strip())
            if found is None:
                continue
            op = found["op"]
            if found["lc"] and found["rn"] and _unquoted(found["lc"]) == column.name:
                number = found["rn"]
            elif found["rc"] and found["ln"] and _unquoted(found["rc"]) == column.name:
                number, op = found["ln"], _FLIPPED[op]
            else:
                continue
            value = Decimal(number.replace(" ", ""))
            if op in (">", ">="):
                bound = _inside(value, True, column, scale) if op == ">" else value
                low = bound if low is None else max(low, bound)
            else:
                bound = _inside(value, False, column, scale) if op == "<" else value
                high = bound if high is None else min(high, bound)
    if column.category is Category.INTEGER:  # a fractional bound: the integers inside it
        low = None if low is None else low.to_integral_value(rounding="ROUND_CEILING")
        high = None if high is None else high.to_integral_value(rounding="ROUND_FLOOR")
    return low, high


# The forms a date bound may take: the current date or time, or a literal of a date type.
CURRENT_TIMES = ("CURRENT_DATE", "CURRENT_TIMESTAMP", "LOCALTIMESTAMP", "now()")
_LITERAL_TIME = (
    r"'(?P<{side}v>[0-9: .+-]+)'::(?P<{side}y>date|timestamp(?: with(?:out)? time zone)?)"
)
_TIME = (
    r"(?P<{side}t>" + _LITERAL_TIME + "|"
    + "|".join(re.escape(name) for name in CURRENT_TIMES) + ")"
)  # fmt: skip
_TIME_LITERAL = re.compile(_LITERAL_TIME.format(side=""))
_TIME_SIDE = "(?:" + _TIME + "|" + _COLUMN + ")"  # CURRENT_DATE is no column
_TIME_COMPARISON = re.compile(
    r"^\(?" + _TIME_SIDE.format(side="l") + r"\s(?P<op><=|>=|<|>)\s"
    + _TIME_SIDE.format(side="r") + r"\)?$"
)  # fmt: skip

TimeBound = tuple[str, str]  # (operator, the bound as the server wrote it): ("<=", "CURRENT_DATE")


def time_literal(bound: str) -> tuple[str, str] | None:
    """A literal bound's (value, type): ``'2020-01-01'::date`` → ("2020-01-01", "date")."""
    found = _TIME_LITERAL.fullmatch(bound)
    return (found["v"], found["y"]) if found else None


def of_time(column: Column, checks: Iterable[Check]) -> tuple[TimeBound, ...]:
    """The comparisons with a fixed or current date or time the checks hold the column to."""
    if column.category not in (Category.DATE, Category.TIMESTAMP, Category.TIMESTAMPTZ):
        return ()
    found: list[TimeBound] = []
    for check in checks:
        for part in _conjuncts(check.condition) or ():
            match = _TIME_COMPARISON.match(part.strip())
            if match is None:
                continue
            if match["lc"] and match["rt"] and _unquoted(match["lc"]) == column.name:
                found.append((match["op"], match["rt"]))
            elif match["rc"] and match["lt"] and _unquoted(match["rc"]) == column.name:
                found.append((_FLIPPED[match["op"]], match["lt"]))
    return tuple(found)
