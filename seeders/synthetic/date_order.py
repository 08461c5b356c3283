"""Dates and times that follow each other as their names say, and rare events left blank.

A rental is returned after it is rented, a trial ends after it starts, an
order ships before it is delivered: real data never says otherwise, and an
app shown the opposite computes negative durations or hides the row. No
CHECK says so in most schemas (pagila's ``rental_date`` and
``return_date`` have none), so the order is read from the columns' names:
the words of a name, less what only says "a time" (``_at``, ``_date``,
``_on``), are an event and its context (``trial_ends_at`` is *ends* in
the context *trial*), and columns of one context whose events are steps
of one known sequence are written in its order. A later step is the
latest earlier step plus a gap of up to 30 days; a blank stays blank (not
shipped yet). Only the first step's values are the generator's own.

A soft-delete or other terminal marker (``deleted_at``, ``cancelled_at``)
is blank in most rows, not in a tenth, and a flag of one (``archived``,
``is_deleted``) false in most: a seed whose rows are nine-tenths or half
deleted shows an app almost nothing.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta

from seeders.schema.meanings import words
from seeders.schema.model import Category, Column

# Steps of one sequence, in order; words in one step are synonyms.
SEQUENCES: tuple[tuple[frozenset[str], ...], ...] = tuple(
    tuple(frozenset(step.split()) for step in steps)
    for steps in (
        ("created inserted", "updated modified changed edited", "deleted archived removed"),
        ("start starts started begin begins began", "end ends ended finish finished stop stopped"),
        ("ordered placed", "paid", "shipped dispatched", "delivered received"),
        ("opened open", "closed close"),
        ("from", "to until till"),
        ("issued", "expires expired expiry expiration"),
        ("sent", "delivered", "read"),
        ("rental rented borrowed", "return returned"),
        ("in", "out"),
        ("submitted requested", "reviewed approved rejected"),
        ("hired", "terminated"),
        ("birth born", "death died"),
        ("first", "last"),
    )
)
# Words that only say "this is a time".
_TIME_WORDS = frozenset({"at", "on", "date", "time", "ts", "timestamp", "datetime", "dt", "day"})
# Events most rows have not had: their columns are mostly blank.
_RARE = frozenset(
    {"deleted", "archived", "removed", "cancelled", "canceled", "revoked", "banned", "suspended",
     "disabled", "terminated", "discarded"}
)  # fmt: skip
RARE_BLANK = 0.9  # the share of rows a rare event's column leaves blank
_TEMPORAL = (Category.DATE, Category.TIMESTAMP, Category.TIMESTAMPTZ)
MAX_GAP_DAYS = 30


def _event(name: str) -> tuple[tuple[str, ...], str] | None:
    """(context, event word) of a name with exactly one event word, else None."""
    parts = [w for w in words(name) if w not in _TIME_WORDS]
    known = {w for steps in SEQUENCES for step in steps for w in step}
    events = [i for i, w in enumerate(parts) if w in known]
    if len(events) != 1:
        return None
    i = events[0]
    return (*parts[:i], *parts[i + 1 :]), parts[i]


def chains(columns: Iterable[Column]) -> list[list[tuple[int, Column]]]:
    """Groups of date or time columns to write in order: (step, column), by step (pure).

    One group per context, kind of value and sequence, of two steps or
    more: ``created_at``, ``updated_at`` and ``deleted_at`` are one group;
    ``starts_at`` (a timestamp) and ``end_date`` (a date) are none.
    """
    found: dict[tuple[tuple[str, ...], Category, int], list[tuple[int, Column]]] = {}
    for column in columns:
        if column.category not in _TEMPORAL or column.is_array:
            continue
        event = _event(column.name)
        if event is None:
            continue
        context, word = event
        for number, steps in enumerate(SEQUENCES):
            step = next((k for k, synonyms in enumerate(steps) if word in synonyms), None)
            if step is not None:
                found.setdefault((context, column.category, number), []).append((step, column))
    return [
        sorted(group, key=lambda sc: sc[0])
        for group in found.values()
        if len({step for step, _ in group}) > 1
    ]


def rare(column: Column) -> bool:
    """Whether the column marks an event most rows have not had (pure)."""
    return any(w in _RARE for w in words(column.name))


def blank_share(column: Column) -> float:
    """The share of rows a nullable column leaves blank: most for a rare event's time."""
    return RARE_BLANK if column.category in _TEMPORAL and rare(column) else 0.1


def put_in_sequence(
    chain: Sequence[tuple[int, Column]],
    values: Mapping[str, list[str]],
    rng: random.Random,
    null: str,
    kept: Collection[str] = (),
) -> dict[str, list[str]]:
    """The chain's later columns rewritten so that each row follows the steps' order (pure).

    Values are the generator's ISO text; ``null`` is the blank marker.
    ``kept`` columns are not rewritten (a recipe's, a key's, one another
    sequence ordered) but still count as their step for the steps after.
    """
    rows = len(values[chain[0][1].name])
    latest: list[datetime | date | None] = [None] * rows  # by row: the latest earlier step
    out: dict[str, list[str]] = {}
    for step in sorted({step for step, _ in chain}):
        seen: list[tuple[int, datetime | date]] = []
        for column in (c for s, c in chain if s == step):
            texts = list(values[column.name])
            day = column.category is Category.DATE
            parse = date.fromisoformat if day else datetime.fromisoformat
            for i, text in enumerate(texts):
                if text == null:
                    continue
                before = latest[i]
                if before is None or column.name in kept:  # nothing to follow, or not ours
                    seen.append((i, parse(text)))
                    continue
                moment = before + _gap(column.category, rng)
                texts[i] = _render(moment)
                seen.append((i, moment))
            if step != chain[0][0] and column.name not in kept:
                out[column.name] = texts
        for i, moment in seen:  # the next step follows the latest of this one
            before = latest[i]
            if before is None or moment > before:
                latest[i] = moment
    return out


def _render(moment: datetime | date) -> str:
    return moment.isoformat(sep=" ") if isinstance(moment, datetime) else moment.isoformat()


def _gap(category: Category, rng: random.Random) -> timedelta:
    if category is Category.DATE:
        return timedelta(days=rng.randrange(0, MAX_GAP_DAYS + 1))
    return timedelta(seconds=rng.randrange(0, MAX_GAP_DAYS * 86400))
