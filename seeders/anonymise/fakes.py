"""Fake values the target's checks accept: ``fake: phone_number`` into ``phone ~ '^\\+[1-9]…'``.

A ``fake`` rule draws from a Faker pool, and a target column under a
one-column CHECK may refuse most of it: Faker's phone numbers are
``(500)507-0587x5237``, an application's column wants E.164. Left alone,
the load would fail on the first row (and say which rule). Instead the pool
is put to the target's own checks before anything is read
(:func:`seeders.synthetic.checks.accepted`); what passes is the pool, and when less
than half passes, text drawn from the checks themselves fills it
(:func:`seeders.synthetic.checks.drawn_text`: the pattern, the lengths). The pool is
fixed by the target's schema, so the same input still gets the same fake in
every run, and in every column whose checks read the same.

A unique column's fakes are tagged to stay distinct, which no pool choice
can make pass a pattern check (``phone ~ '^\\+[1-9][0-9]{6,14}$'``). Under
such a check the fake is built from the pattern itself instead, a position
at a time from the value's MAC (:func:`seeders.synthetic.patterns.positions`), where
the pattern leaves enough choice for the table's rows to stay distinct
(collisions below one in ten thousand runs) and the target's checks pass
values so built. Left as they are: a column joined to others by a foreign
key (every member must draw from one pool, and share one pseudonym).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from seeders.anonymise.rules import Rules
from seeders.anonymise.shapes import Shape
from seeders.anonymise.transform import fake_pool
from seeders.schema.graph import Key, families
from seeders.schema.model import Check, Schema, Table
from seeders.schema.names import own_rows
from seeders.synthetic import checks, patterns
from seeders.synthetic.values import escape, unescape

SAMPLED = 200  # values of a built pattern's form the target's checks judge
UNIQUE_BITS = 64  # what a built pseudonym carries where its pattern allows: as a tag does


def fitted(
    conn: psycopg.Connection[Any],
    copied: Schema,
    target: Schema,
    rules: Rules,
    shaped: Mapping[Key, Shape],
    source: psycopg.Connection[Any] | None = None,
) -> dict[Key, Shape]:
    """``shaped`` with each fake rule's pool narrowed to what its target column's checks pass.

    ``source`` counts a table's rows where a unique fake's pattern must leave
    room for them all (the planner's estimate may be stale or missing).
    """
    joined = families(copied.tables)
    targets = {t.qualified: t for t in target.tables}
    out = dict(shaped)
    for table in copied.tables:
        other = targets.get(table.qualified)
        if other is None:
            continue
        table_rules = rules.for_table(table)
        for name, column_checks in checks.single_column_checks(other).items():
            key, rule = (table.qualified, name), table_rules.get(name)
            shape = shaped.get(key)
            if rule is None or rule.kind != "fake" or shape is None or key in joined:
                continue
            if shape.unique:
                rows = functools.partial(_rows, source, table)  # counted only where needed
                built = _patterned(conn, other, name, column_checks, shape, rows)
                if built is not None:
                    out[key] = dataclasses.replace(shape, pattern=built)
                continue
            pool = _fitting(conn, other, name, column_checks, str(rule.options["provider"]), shape)
            if pool:  # none at all: the load says which rule its check refuses
                out[key] = dataclasses.replace(shape, fakes=pool)
    return out


def _fitting(
    conn: psycopg.Connection[Any],
    table: Table,
    name: str,
    column_checks: list[Check],
    provider: str,
    shape: Shape,
) -> tuple[str, ...]:
    column = table.column(name)
    limit = shape.max_length
    pool = [escape(v[:limit] if limit is not None else v) for v in fake_pool(provider)]
    pool = list(dict.fromkeys(pool))
    found = checks.accepted(conn, column, column_checks, pool)
    wanted = len(pool) // 2
    if len(found) < wanted:
        # Seeded by what the pool is for, not where: columns whose checks read
        # the same (a phone in two tables) draw one pool, so one input gets
        # one fake in both.
        said = sorted(c.condition.replace(name, "VALUE") for c in column_checks)
        rng = random.Random(f"fake:{provider}:{column.type_name}:{limit}:{said}")
        found = checks.filled(
            conn, column, column_checks, pool, found, wanted, len(pool), rng, False, limit
        )
    return tuple(unescape(v) for v in found)


def _rows(source: psycopg.Connection[Any] | None, table: Table) -> int:
    """The table's rows: the planner's estimate, or the source's count where that is more."""
    if source is None:
        return table.estimated_rows
    found = source.execute(sql.SQL("SELECT count(*) FROM {}").format(own_rows(table))).fetchone()
    return max(table.estimated_rows, int(found[0]) if found else 0)


def _patterned(
    conn: psycopg.Connection[Any],
    table: Table,
    name: str,
    column_checks: list[Check],
    shape: Shape,
    rows: Callable[[], int],
) -> tuple[str, ...] | None:
    """Positions of a pattern the unique column's checks accept values built from, or None.

    64 bits of choice where the pattern has room, and at least enough that
    ``rows`` pseudonyms collide with odds under 1e-4 (n²/2 over the
    positions' combinations); the server judges a sample of values of that
    form against every check of the column.
    """
    column = table.column(name)
    rng = random.Random(f"pattern:{name}:{column.type_name}")
    for check in column_checks:
        for pattern in patterns.patterns_in(check.condition):
            # Not fitted to ``rows``: one value must get one pseudonym in every table.
            built = patterns.positions(pattern, UNIQUE_BITS, shape.max_length)
            if built is None or patterns.choice(built) < 2 * math.log2(max(rows(), 1000)) + 14:
                continue
            sample = ["".join(rng.choice(chars) for chars in built) for _ in range(SAMPLED)]
            candidates = [escape(v) for v in dict.fromkeys(sample)]
            if len(checks.accepted(conn, column, column_checks, candidates)) == len(candidates):
                return built
    return None
