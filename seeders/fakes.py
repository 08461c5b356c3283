"""Fake values the target's checks accept: ``fake: phone_number`` into ``phone ~ '^\\+[1-9]…'``.

A ``fake`` rule draws from a Faker pool, and a target column under a
one-column CHECK may refuse most of it: Faker's phone numbers are
``(500)507-0587x5237``, an application's column wants E.164. Left alone,
the load would fail on the first row (and say which rule). Instead the pool
is put to the target's own checks before anything is read
(:func:`seeders.checks.accepted`); what passes is the pool, and when less
than half passes, text drawn from the checks themselves fills it
(:func:`seeders.checks.drawn_text`: the pattern, the lengths). The pool is
fixed by the target's schema, so the same input still gets the same fake in
every run, and in every column whose checks read the same.

Left as they are: a unique column (its fakes are tagged to stay distinct,
which no pool choice can make pass a pattern) and a column joined to others
by a foreign key (every member must draw from one pool).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

import psycopg

from seeders import checks
from seeders.rules import Rules
from seeders.schema import Check, Schema, Table
from seeders.shapes import Key, Shape, families
from seeders.transform import fake_pool
from seeders.values import escape, unescape


def fitted(
    conn: psycopg.Connection[Any],
    copied: Schema,
    target: Schema,
    rules: Rules,
    shaped: Mapping[Key, Shape],
) -> dict[Key, Shape]:
    """``shaped`` with each fake rule's pool narrowed to what its target column's checks pass."""
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
            if rule is None or rule.kind != "fake" or shape is None:
                continue
            if shape.unique or key in joined:
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
