"""The values a column under a CHECK constraint may take: those the server accepts.

``CHECK (rating BETWEEN 1 AND 5)``, ``CHECK (kind IN ('book', 'toy'))`` or
``CHECK (discount >= 0 AND discount <= 100)`` are in most application
schemas, and one generated row outside them fails the whole seed. As for
partitions (:mod:`seeders.synthetic.partitions`), what a check accepts is the
server's to say: each check that reads one column is evaluated on the
values the seeder would write, so no expression syntax is parsed here to
decide what fits. The check's text is read only for *candidates*: the
literals it names (a value list's labels, a range's ends) and numbers and
dates around them, which a pool of invented values most likely lacks. A
column whose check no candidate passes, or too few for a unique column, is
refused before writing with the way round it (values in the recipe).
Checks over several columns are left to the load, which names them if a
row breaks one.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from psycopg import sql

from seeders.schema.fields import field_checks
from seeders.schema.model import Category, Check, Column, Schema, Table, bits_of
from seeders.synthetic import patterns
from seeders.synthetic.generator import SyntheticConfig, must_be_unique
from seeders.synthetic.partitions import condition, passing
from seeders.synthetic.values import (
    POOL_SIZE,
    CannotGenerate,
    escape,
    faker_pool,
    generate,
    record_literal,
    unescape,
)

# A quoted literal as the server writes it ('book'::text, '-5'::integer), or a
# bare number not part of a name (0.5, 100).
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"(?<![\w.\"])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")
_SPREAD = 1000  # candidates spread between and around a check's numeric literals
_DATE_REACH = 3 * 365  # days either side of a date literal
_LENGTH = re.compile(r"\b(?:char_|character_|octet_)?length\(")
_LENGTH_SPAN = 64  # longest text a length check's candidates have
_NUMERIC_CAST = re.compile(r"::(?:smallint|integer|bigint|numeric|real|double precision)\b")


def fit(conn: psycopg.Connection[Any], schema: Schema, config: SyntheticConfig) -> SyntheticConfig:
    """``config`` with, for each column under a one-column CHECK, values the checks accept."""
    accepted = {t: dict(cols) for t, cols in config.accepted_values.items()}
    never_null = set(config.never_null)
    for table in schema.tables:
        if config.rows_for(table) == 0:
            continue
        for name, checks in single_column_checks(table).items():
            column = table.column(name)
            values = _fitted(conn, table, column, checks, config)
            accepted.setdefault(table.qualified, {})[name] = values
            if column.nullable and not _passes_null(conn, column, checks):
                never_null.add((table.qualified, name))
    return dataclasses.replace(config, accepted_values=accepted, never_null=frozenset(never_null))


def single_column_checks(table: Table) -> dict[str, list[Check]]:
    """Column → the checks reading it alone; a foreign key's values are its parent's."""
    referencing = {c for fk in table.foreign_keys for c in fk.columns}
    by_column: dict[str, list[Check]] = {}
    for check in table.checks:
        if len(check.columns) == 1 and check.columns[0] not in referencing:
            column = table.column(check.columns[0])
            if column.writable:
                by_column.setdefault(column.name, []).append(check)
    return by_column


def _fitted(
    conn: psycopg.Connection[Any],
    table: Table,
    column: Column,
    checks: list[Check],
    config: SyntheticConfig,
) -> tuple[str, ...]:
    rows = config.rows_for(table)
    unique = must_be_unique(table, column.name)
    override = config.overrides.get(table.name, {}).get(column.name)
    known = config.accepted_values.get(table.qualified, {}).get(column.name)
    rng = random.Random(f"{config.seed}:{table.qualified}:{column.name}:checks")
    count = 4 * rows if unique else POOL_SIZE
    if known is not None:  # a partition key: already what its partitions accept
        candidates: list[str] = list(known)
    elif override is not None and override.values is not None:
        candidates = [escape(v) for v in override.values]
    else:
        generated = generate(column, count, rng, config.seed, unique, table.name)
        literal = [escape(v) for v in literal_candidates(column, checks)]
        # Invented values first (they look real); a check's literals after.
        candidates = list(dict.fromkeys([*generated, *literal]))
    values = accepted(conn, column, checks, candidates, rows if unique else None)
    # Too few pass: fewer than the rows (unique), or than half the distinct
    # values tried (a currency pool of 160 codes that all pass is enough).
    wanted = rows if unique else max(1, len(candidates) // 2)
    if known is None and override is None and column.fields and len(values) < wanted:
        built = _records(conn, column, checks, rng, config.seed)
        values = list(dict.fromkeys([*values, *accepted(conn, column, checks, built)]))
    if known is None and override is None and len(values) < wanted:
        # Most invented values fail (a pattern, a fixed length, upper case):
        # text drawn from what the check itself says, until enough pass.
        # Twice what is missing: most drawn values are new and pass.
        drawing = 2 * (wanted - len(values)) + POOL_SIZE if unique else count
        values = filled(conn, column, checks, candidates, values, wanted, drawing, rng, unique)
    if not values or (unique and len(values) < rows):
        names = ", ".join(f"{c.name} (domain {c.domain})" if c.domain else c.name for c in checks)
        raise CannotGenerate(
            f"{table.qualified}.{column.name}: {len(values)} of the values the seeder tried pass"
            f" {names} ({'; '.join(c.expression for c in checks)}), {rows if unique else 1}"
            f" needed; give {column.name} values that pass in the recipe (columns: {{"
            + column.name
            + ": {values: [...]}}), or set the table's rows to 0"
        )
    return tuple(values[:rows] if unique else values)


def _records(
    conn: psycopg.Connection[Any],
    column: Column,
    checks: Sequence[Check],
    rng: random.Random,
    seed: int,
) -> list[str]:
    """Composite values built from fields that each pass what the checks say of it alone.

    A field under a check of its own (``(home).postcode ~ '^[A-Z]{2}[0-9]{3}$'``)
    gets its values as a column under that check would; the others are
    invented as ever. The records are still judged whole by the caller.
    """
    own = field_checks(column, checks)
    pools: list[list[str]] = []
    for member in column.fields:
        pool = list(generate(member, POOL_SIZE, rng, seed, False, column.name))
        read = own.get(member.name)
        if read:
            literal = [escape(v) for v in literal_candidates(member, read)]
            tried = list(dict.fromkeys([*pool, *literal]))
            wanted = max(1, len(tried) // 2)
            pool = accepted(conn, member, read, tried)
            pool = filled(conn, member, read, tried, pool, wanted, POOL_SIZE, rng, False)
        if not pool:
            return []
        pools.append([unescape(v) for v in pool])
    built = (record_literal([rng.choice(p) for p in pools]) for _ in range(POOL_SIZE))
    return list(dict.fromkeys(escape(r) for r in built))


def literal_candidates(column: Column, checks: Sequence[Check]) -> list[str]:
    """Values of the column's type built from the literals its checks name (pure)."""
    if column.is_array:
        return []
    texts = [m.replace("''", "'") for c in checks for m in _QUOTED.findall(c.condition)]
    bare = [m for c in checks for m in _NUMBER.findall(_QUOTED.sub("''", c.condition))]
    category = column.category
    if category in (Category.TEXT, Category.ENUM):
        limit = column.max_length
        return [t for t in texts if limit is None or len(t) <= limit]
    if category in (Category.INTEGER, Category.NUMERIC, Category.FLOAT):
        return _numbers(column, [*texts, *bare])
    if category is Category.DATE:
        return _dates(texts)
    return []


def filled(
    conn: psycopg.Connection[Any],
    column: Column,
    checks: Sequence[Check],
    invented: Sequence[str],
    found: Sequence[str],
    wanted: int,
    count: int,
    rng: random.Random,
    unique: bool,
    limit: int | None = None,
) -> list[str]:
    """``found``, then drawn text (:func:`drawn_text`) the checks pass, until ``wanted`` are.

    COPY-escaped, in order; a drawn value already found is kept once (one
    the invented values held and failed fails again). ``limit``: a length
    narrower than the column's, values longer are not tried.
    """
    values, tried = list(found), set(found)
    if len(values) >= wanted:
        return values
    for batch in drawn_text(column, checks, invented, count, rng):
        fresh = [
            v for v in batch if v not in tried and (limit is None or len(unescape(v)) <= limit)
        ]
        tried.update(fresh)
        values += accepted(conn, column, checks, fresh, wanted - len(values) if unique else None)
        if len(values) >= wanted:
            break  # before the next batch is drawn
    return values


def drawn_text(
    column: Column, checks: Sequence[Check], invented: Sequence[str], count: int, rng: random.Random
) -> Iterator[list[str]]:
    """Batches of text for a column whose checks refuse most invented values (pure).

    Drawn from each of the checks' patterns (``~``, LIKE, SIMILAR TO), from
    the lengths a ``length(…)`` check names, then the invented values in
    upper and lower case (``CHECK (code = upper(code))``); COPY-escaped,
    within the column's length, at most ``count`` (about) per batch.
    """
    if column.is_array:
        return
    if column.category is Category.JSON:  # CHECK (jsonb_typeof(tags) = 'array')
        yield [escape(v) for v in _json_shapes(count, rng)]
        return
    if column.category is not Category.TEXT:
        return
    drawn = [p for c in checks for p in patterns.patterns_in(c.condition)]
    if any(_NUMERIC_CAST.search(c.condition) for c in checks):  # CHECK (num::integer > 0)
        drawn += ["[1-9][0-9]{0,8}", "0|-[1-9][0-9]{0,4}"]
    lengths = [n for c in checks for n in _lengths(c)]
    if lengths:
        drawn.append("|".join(f"[a-z0-9]{{{n}}}" for n in sorted(set(lengths))))
    limit = column.max_length
    for pattern in drawn:
        try:
            batch = patterns.sample(pattern, count, rng)
        except (patterns.Unsupported, re.error):
            continue
        yield [escape(v) for v in dict.fromkeys(batch) if limit is None or len(v) <= limit]
    plain = [unescape(v) for v in invented]
    yield [escape(v.upper()) for v in plain]
    yield [escape(v.lower()) for v in plain]


def _json_shapes(count: int, rng: random.Random) -> list[str]:
    """JSON arrays, strings, numbers and booleans: what a check on a document's type may want."""
    words = [unescape(w) for w in faker_pool("word")]
    shapes = [json.dumps(rng.sample(words, k=rng.randint(0, 4))) for _ in range(count)]
    shapes += [json.dumps(w) for w in words[:count]]
    shapes += [str(rng.randint(-1000, 1000)) for _ in range(count // 4)]
    return [*shapes, "true", "false"]


def _lengths(check: Check) -> list[int]:
    """``length(code) = 5`` → 4, 5 and 6: around and between its numbers (the server picks)."""
    if not _LENGTH.search(check.condition):
        return []
    numbers = {int(n) for n in _NUMBER.findall(_QUOTED.sub("''", check.condition)) if n.isdigit()}
    lengths = {m for n in numbers for m in (n - 1, n, n + 1)}
    if numbers and max(numbers) - min(numbers) <= _LENGTH_SPAN:
        lengths.update(range(min(numbers), max(numbers) + 1))
    return sorted(n for n in lengths if 0 < n <= _LENGTH_SPAN)


def _numbers(column: Column, literals: Sequence[str]) -> list[str]:
    found: list[Decimal] = []
    for text in literals:
        try:
            number = Decimal(text)
        except InvalidOperation:
            continue
        if number.is_finite():
            found.append(number)
    if not found:
        return []
    low, high = min(found), max(found)
    width = max(high - low, Decimal(_SPREAD))
    step = width / _SPREAD
    if column.category is Category.INTEGER:
        step = max(Decimal(1), step.to_integral_value())
    values = [*found]
    # Between the ends, and as far again beyond each (a lone bound: 0 → up to 1000).
    start = low - (width if len(set(found)) == 1 else 0)
    values += [start + step * k for k in range(3 * _SPREAD)]
    if column.category is Category.INTEGER:
        values = [v.to_integral_value() for v in values]
    elif column.numeric_scale is not None:
        quantum = Decimal(1).scaleb(-column.numeric_scale)
        values = [v.quantize(quantum) for v in values]
    return [str(v) for v in dict.fromkeys(values) if _in_range(column, v)]


def _in_range(column: Column, value: Decimal) -> bool:
    """Inside the column type's range: a cast of anything else fails the whole query."""
    bits = bits_of(column)
    if bits is not None:
        return -(1 << (bits - 1)) <= value < (1 << (bits - 1))
    if column.numeric_precision is not None:
        return abs(value) < Decimal(10) ** (column.numeric_precision - (column.numeric_scale or 0))
    return True


def _dates(literals: Sequence[str]) -> list[str]:
    found = []
    for text in literals:
        try:
            found.append(date.fromisoformat(text.strip()[:10]))
        except ValueError:
            continue
    days = range(-_DATE_REACH, _DATE_REACH + 1)
    return [(d + timedelta(days=k)).isoformat() for d in found for k in days]


def _conditions(checks: Sequence[Check]) -> sql.Composable:
    return sql.SQL(" AND ").join(condition(c.condition) for c in checks)


def _passes_null(conn: psycopg.Connection[Any], column: Column, checks: Sequence[Check]) -> bool:
    """A check passes unless it is false: NULL passes ``rating >= 1``, not ``i IS NOT NULL``."""
    query = sql.SQL(
        "SELECT ({fits}) IS NOT FALSE FROM (SELECT CAST(%s::text AS {t}) AS {c}) AS r"
    ).format(fits=_conditions(checks), t=sql.SQL(column.checked_as), c=sql.Identifier(column.name))
    with conn.transaction():
        row = conn.execute(query, (None,)).fetchone()
    return bool(row and row[0])


def accepted(
    conn: psycopg.Connection[Any],
    column: Column,
    checks: Sequence[Check],
    candidates: Sequence[str],
    wanted: int | None = None,
) -> list[str]:
    """The candidates (COPY-escaped text, in order) that pass every check.

    ``wanted``: as many as needed, if fewer than all (see :func:`passing`).
    """
    return passing(conn, column, _conditions(checks), candidates, wanted)
