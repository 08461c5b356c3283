"""Text that matches a CHECK's pattern: ``code ~ '^[A-Z]{3}-[0-9]{4}$'``, LIKE, SIMILAR TO.

Pattern checks are as common in application schemas as ranges and value
lists (product codes, E.164 phone numbers, hex colours, slugs), and an
invented name or word passes almost none of them. A column's pool then
comes from the pattern itself: the pattern is parsed by the standard
library's regular-expression parser and *sampled*, a position at a time
for the whole pool (``random.choices`` over each position's characters),
so a unique column's hundreds of thousands of candidates cost about what a
Faker pool does. Nothing here decides whether a value fits: PostgreSQL's
regular expressions are not Python's, so every candidate is still put to the
server's own check (:func:`seeders.synthetic.checks.accepted`), and a construct the
parser or the sampler does not know yields no candidates, never wrong ones.

Pure: no database, deterministic for a given ``random.Random`` state.
"""

from __future__ import annotations

import importlib
import math
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The standard library's own parser (the one ``re.compile`` uses); it has no
# public name, and typeshed describes it only under its deprecated alias.
_parser: Any = importlib.import_module("re._parser")

_LETTERS = string.ascii_letters
_DIGITS = string.digits
_WORD = _LETTERS + _DIGITS + "_"
# What ``.`` and a negated class draw from: characters that read as text and
# need no escaping anywhere.
_PLAIN = _LETTERS + _DIGITS + "-_."
_SPACE = " "
_CATEGORIES = {
    "CATEGORY_DIGIT": _DIGITS,
    "CATEGORY_NOT_DIGIT": _LETTERS + "-_.",
    "CATEGORY_WORD": _WORD,
    "CATEGORY_NOT_WORD": "-. ",
    "CATEGORY_SPACE": _SPACE,
    "CATEGORY_NOT_SPACE": _PLAIN,
}
# POSIX bracket classes PostgreSQL's regular expressions accept and Python's
# do not (inside a bracket expression: ``[[:alpha:]_]``).
_POSIX = {
    "alpha": "a-zA-Z",
    "upper": "A-Z",
    "lower": "a-z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "xdigit": "0-9a-fA-F",
    "space": " ",
    "blank": " ",
    "word": "a-zA-Z0-9_",
    "punct": r"\-.,!?",
}
_RANGE_LIMIT = 256  # characters taken from one range (``[^\x00-\x7f]`` has a million)
_EXTRA_REPEATS = 8  # an open repeat (``+``, ``*``, ``{3,}``) runs this far past its minimum
_ROOM = 64  # optional repeats stop adding where a value could grow past this many characters
_LONGEST = 1000  # a pattern whose shortest match is longer is not sampled

# A pattern operand as the server writes a check: ``~ '…'::text``, ``~* '…'``,
# ``~~ '…'`` (LIKE), ``~~* '…'`` (ILIKE), ``~ similar_to_escape('…')``
# (SIMILAR TO). Negated operators (``!~``) are not patterns a value must match.
_REGEX = re.compile(r"(?<![!~])~\*? '((?:[^']|'')*)'")
_LIKE = re.compile(r"(?<![!~])~~\*? '((?:[^']|'')*)'")
_SIMILAR = re.compile(r"similar_to_escape\('((?:[^']|'')*)'")


class Unsupported(ValueError):
    """A construct the sampler cannot invent text for (a back-reference, a look-around)."""


def patterns_in(condition: str) -> list[str]:
    """The check's patterns as Python regular expressions (pure).

    LIKE and SIMILAR TO are translated to the regular expressions they
    mean; PostgreSQL's POSIX classes are spelled out.
    """
    found = [_posix_classes(m.replace("''", "'")) for m in _REGEX.findall(condition)]
    found += [like_regex(m.replace("''", "'")) for m in _LIKE.findall(condition)]
    found += [similar_regex(m.replace("''", "'")) for m in _SIMILAR.findall(condition)]
    return found


def like_regex(pattern: str) -> str:
    """A LIKE pattern as a regular expression: ``%`` any run, ``_`` one character."""
    return "^" + _wildcards(pattern, similar=False) + "$"


def similar_regex(pattern: str) -> str:
    """A SIMILAR TO pattern as a regular expression (whole-value, as SQL's is)."""
    return "^(?:" + _posix_classes(_wildcards(pattern, similar=True)) + ")$"


def _wildcards(pattern: str, similar: bool) -> str:
    """SQL's ``%`` and ``_`` as ``.*`` and ``.``; the rest literal, or (SIMILAR TO) regex syntax."""
    out, escaped, bracket = [], False, False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif similar and (bracket or char == "["):  # a bracket expression is copied as it is
            out.append(char)
            bracket = char != "]"
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif similar and char not in ".^$":
            out.append(char)
        else:
            out.append(re.escape(char))
    return "".join(out)


def _posix_classes(pattern: str) -> str:
    return re.sub(r"\[:(\w+):\]", lambda m: _POSIX.get(m.group(1), m.group(0)), pattern)


def sample(pattern: str, count: int, rng: random.Random) -> list[str]:
    """``count`` strings the pattern matches whole, in the order drawn (repeats possible).

    Raises :class:`Unsupported` for what the sampler cannot invent and
    ``re.error`` for what Python cannot parse.
    """
    items = _parser.parse(pattern)
    if _widths(items)[0] > _LONGEST:
        raise Unsupported(f"matches are longer than {_LONGEST} characters")
    return _sequence(items, count, rng)


def _sequence(items: Sequence[Any], count: int, rng: random.Random) -> list[str]:
    drawn = [_item(op.name, argument, count, rng) for op, argument in items]
    pieces = [p for p in drawn if p is not None]
    if not pieces:
        return [""] * count
    if len(pieces) == 1:
        return pieces[0]
    return ["".join(parts) for parts in zip(*pieces, strict=True)]


def _item(op: str, argument: Any, count: int, rng: random.Random) -> list[str] | None:
    if op == "AT":  # anchors: every value is drawn whole
        return None
    if op == "LITERAL":
        return [chr(argument)] * count
    if op == "NOT_LITERAL":
        return rng.choices(_PLAIN.replace(chr(argument), ""), k=count)
    if op == "ANY":
        return rng.choices(_PLAIN, k=count)
    if op == "IN":
        return rng.choices(_class(argument), k=count)
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, inner = argument
        return _repeat(low, high, inner, count, rng)
    if op == "SUBPATTERN":
        return _sequence(argument[-1], count, rng)
    if op == "ATOMIC_GROUP":
        return _sequence(argument, count, rng)
    if op == "BRANCH":
        return _branch(argument[1], count, rng)
    raise Unsupported(op)


def _class(members: Sequence[Any]) -> str:
    chars: list[str] = []
    negated = False
    for op, argument in members:
        name = op.name
        if name == "NEGATE":
            negated = True
        elif name == "LITERAL":
            chars.append(chr(argument))
        elif name == "RANGE":
            low, high = argument
            chars.extend(chr(c) for c in range(low, min(high, low + _RANGE_LIMIT - 1) + 1))
        elif name == "CATEGORY":
            chars.extend(_CATEGORIES.get(argument.name, ""))
        else:
            raise Unsupported(name)
    if negated:
        excluded = set(chars)
        chars = [c for c in _PLAIN + _SPACE if c not in excluded]
    if not chars:
        raise Unsupported("an empty character class")
    return "".join(dict.fromkeys(chars))


def _top(low: int, high: int, widest: int) -> int:
    """How many times a repeat of ``widest``-character items may run: a few past its minimum,
    within ``_ROOM`` (``widest`` counts nested repeats' own runs)."""
    room = _ROOM // widest - low if widest else _EXTRA_REPEATS
    return min(high, low + max(0, min(_EXTRA_REPEATS, room)))


def _widths(items: Sequence[Any]) -> tuple[int, int]:
    """The shortest and longest text the sampler draws for ``items``."""
    least = most = 0
    for op, argument in items:
        name = op.name
        if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            low = high = 1
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            times, most, inner = argument
            low, high = _widths(inner)
            low, high = times * low, _top(times, most, high) * high
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            low, high = _widths(argument[-1] if name == "SUBPATTERN" else argument)
        elif name == "BRANCH":
            spans = [_widths(a) for a in argument[1]]
            low, high = min(w[0] for w in spans), max(w[1] for w in spans)
        else:  # anchors; what the sampler refuses says so when drawn
            low = high = 0
        least, most = least + low, most + high
    return least, most


def _repeat(low: int, high: int, inner: Sequence[Any], count: int, rng: random.Random) -> list[str]:
    pieces = [_sequence(inner, count, rng) for _ in range(low)]
    out = ["".join(parts) for parts in zip(*pieces, strict=True)] if pieces else [""] * count
    top = _top(low, high, _widths(inner)[1])
    if top == low:
        return out
    extra = [rng.randint(0, top - low) for _ in range(count)]
    for k in range(top - low):
        rows = [i for i, n in enumerate(extra) if n > k]
        for i, piece in zip(rows, _sequence(inner, len(rows), rng), strict=True):
            out[i] += piece
    return out


def _branch(alternatives: Sequence[Sequence[Any]], count: int, rng: random.Random) -> list[str]:
    chosen = rng.choices(range(len(alternatives)), k=count)
    out = [""] * count
    for a, alternative in enumerate(alternatives):
        rows = [i for i, c in enumerate(chosen) if c == a]
        for i, piece in zip(rows, _sequence(alternative, len(rows), rng), strict=True):
            out[i] = piece
    return out


@dataclass(frozen=True)
class _Run:
    """A repeat whose count is chosen: ``low`` to ``high`` copies of ``unit``."""

    low: int
    high: int
    unit: tuple[str, ...]


_Segment = tuple[str, ...] | _Run


def positions(pattern: str, bits: float, max_length: int | None) -> tuple[str, ...] | None:
    """The characters each position may take in a text the pattern matches whole (pure).

    The shortest such text whose positions together carry at least ``bits``
    of choice (:func:`choice`), or where no text of at most ``max_length``
    (and ``_ROOM``) characters carries that many, the one that carries the
    most: ``^\\+[1-9][0-9]{6,14}$`` gives ``+``, ``1-9`` and 14 digits' positions
    (50 bits) for 64. The same pattern and length always give the same
    positions, so one value gets one pseudonym in every table. None for what
    the sampler does not support, or a pattern no text within the length matches.
    """
    try:
        segments = _segments(_parser.parse(pattern))
    except (Unsupported, re.error):
        return None
    counts = [s.low if isinstance(s, _Run) else 1 for s in segments]
    limit = min(_ROOM, max_length) if max_length is not None else _ROOM

    def length() -> int:
        return sum(_size(s) * n for s, n in zip(segments, counts, strict=True))

    def carried() -> float:
        return sum(_bits(s) * n for s, n in zip(segments, counts, strict=True))

    while carried() < bits:
        growable = [
            i for i, s in enumerate(segments)
            if isinstance(s, _Run) and counts[i] < s.high and length() + len(s.unit) <= limit
            and _bits(s) > 0
        ]  # fmt: skip
        if not growable:
            break
        best = max(growable, key=lambda i: _bits(segments[i]) / _size(segments[i]))
        counts[best] += 1
    if length() > limit:
        return None
    out: list[str] = []
    for segment, n in zip(segments, counts, strict=True):
        out += (segment.unit if isinstance(segment, _Run) else segment) * n
    return tuple(out)


def choice(positions: Sequence[str]) -> float:
    """How many bits of choice the positions carry: log2 of each one's characters, summed."""
    return sum(math.log2(len(chars)) for chars in positions)


def _size(segment: _Segment) -> int:
    return len(segment.unit) if isinstance(segment, _Run) else len(segment)


def _bits(segment: _Segment) -> float:
    chars = segment.unit if isinstance(segment, _Run) else segment
    return sum(math.log2(len(c)) for c in chars)


def _segments(items: Sequence[Any]) -> list[_Segment]:
    out: list[_Segment] = []
    for op, argument in items:
        name = op.name
        if name == "AT":
            continue
        if name == "LITERAL":
            out.append((chr(argument),))
        elif name == "NOT_LITERAL":
            out.append((_PLAIN.replace(chr(argument), ""),))
        elif name == "ANY":
            out.append((_PLAIN,))
        elif name == "IN":
            out.append((_class(argument),))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, inner = argument
            unit = _fixed(_segments(inner))
            if unit:
                out.append(_Run(low, min(high, max(low, _ROOM // len(unit))), unit))
        elif name == "SUBPATTERN":
            out += _segments(argument[-1])
        elif name == "ATOMIC_GROUP":
            out += _segments(argument)
        elif name == "BRANCH":
            choices = [_segments(a) for a in argument[1]]
            out += max(choices, key=lambda c: sum(_bits(s) * _most(s) for s in c))
        else:
            raise Unsupported(name)
    return out


def _most(segment: _Segment) -> int:
    return segment.high if isinstance(segment, _Run) else 1


def _fixed(segments: Sequence[_Segment]) -> tuple[str, ...]:
    """The positions of ``segments`` with every repeat at its least (a repeat inside a repeat)."""
    out: list[str] = []
    for segment in segments:
        out += (segment.unit * segment.low) if isinstance(segment, _Run) else segment
    return tuple(out)
