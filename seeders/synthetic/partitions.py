"""The values a partitioned table's key may take: those some partition accepts.

A row whose key no partition accepts fails the whole load ("no partition of
relation found for row"), and a table partitioned by month accepts only the
months it has partitions for. Which values those are is the server's to
say: every leaf partition's constraint (``pg_get_partition_constraintdef``,
which includes its ancestors' for a sub-partition; a default partition's is
the negation of its siblings') is evaluated on the values the seeder would
write, so range, list, hash and default partitions at any depth need no
parsing here. Keys of several columns or of an expression are refused with
the way round it.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from seeders.schema.model import Category, Column, Schema, Table
from seeders.synthetic.generator import SyntheticConfig, must_be_unique
from seeders.synthetic.values import (
    POOL_SIZE,
    CannotGenerate,
    date_pool,
    escape,
    generate,
    unescape,
)


def fit(conn: psycopg.Connection[Any], schema: Schema, config: SyntheticConfig) -> SyntheticConfig:
    """``config`` with, for each partitioned table's key column, the values that fit a partition."""
    fitted: dict[str, dict[str, tuple[str, ...]]] = {}
    for table in schema.tables:
        if table.partitioned and config.rows_for(table) > 0:
            column, values = _fitted(conn, table, config)
            fitted[table.qualified] = {column: values}
    return dataclasses.replace(config, accepted_values=fitted) if fitted else config


def _fitted(
    conn: psycopg.Connection[Any], table: Table, config: SyntheticConfig
) -> tuple[str, tuple[str, ...]]:
    rows = config.rows_for(table)
    if len(table.partition_key) != 1:
        raise CannotGenerate(
            f"{table.qualified} is partitioned by "
            + (f"({', '.join(table.partition_key)})" if table.partition_key else "an expression")
            + "; the synthetic seeder places rows by a one-column key only: set its rows to 0"
            " in the recipe (tables: {" + table.name + ": {rows: 0}})"
        )
    name = table.partition_key[0]
    column = table.column(name)
    unique = must_be_unique(table, name)
    override = config.overrides.get(table.name, {}).get(name)
    rng = random.Random(f"{config.seed}:{table.qualified}:{name}:partitions")
    if override is not None and override.values is not None:
        candidates: Sequence[str] = [escape(v) for v in override.values]
    elif column.category is Category.DATE:  # every one, not a sample (each once)
        candidates = date_pool()
    else:  # unique: enough to spare; else a pool to draw from
        count = 4 * rows if unique else POOL_SIZE
        candidates = list(
            dict.fromkeys(generate(column, count, rng, config.seed, unique, table.name))
        )
    # The partitions' own bound values first: a list partition's values and a
    # range's lower bounds are what a pool of invented values most likely lacks.
    candidates = list(dict.fromkeys([*bound_values(conn, table), *candidates]))
    values = accepted(conn, table, name, candidates, rows if unique else None)
    if not values or (unique and len(values) < rows):
        shown = f"{unescape(candidates[0])} … {unescape(candidates[-1])}" if candidates else "none"
        raise CannotGenerate(
            f"{table.qualified}.{name}: {len(values)} of the values the seeder would write"
            f" ({shown}) fall in a partition, {rows if unique else 1} needed; give {name} values"
            " inside the partitions' bounds (columns: {" + name + ": {values: [...]}}), add"
            " partitions, or set the table's rows to 0"
        )
    return name, tuple(values[:rows] if unique else values)


# A literal of a partition bound as pg_get_expr writes it: quoted (quotes
# doubled inside) or bare (a number, MINVALUE, NULL).
_LITERAL = re.compile(r"'((?:[^']|'')*)'(?:::[\w .\"]+)?|([^\s,()']+)")
_BOUND = re.compile(r"^FOR VALUES (?:IN \((?P<list>.*)\)|FROM \((?P<low>.*?)\) TO \(.*\))$")


def _of_partitions(
    conn: psycopg.Connection[Any], table: Table, expression: str, leaves: bool = False
) -> list[str | None]:
    """``expression`` (of ``pg_class c``) for every partition of ``table``, at any depth."""
    relation = sql.Identifier(table.schema, table.name).as_string(conn)
    query = sql.SQL(
        "SELECT {} FROM pg_partition_tree(%s::regclass) AS t JOIN pg_class AS c ON c.oid = t.relid"
        " WHERE t.level > 0{}"
    ).format(sql.SQL(expression), sql.SQL(" AND t.isleaf" if leaves else ""))
    return [row[0] for row in conn.execute(query, (relation,)).fetchall()]


def bound_values(conn: psycopg.Connection[Any], table: Table) -> list[str]:
    """Every value a partition bound of ``table`` names (COPY-escaped), at any depth.

    Only candidates: what a partition truly accepts is the server's to say
    (:func:`accepted`), so a bound read wrongly here costs a candidate, never a row.
    """
    found: list[str] = []
    for bound in _of_partitions(conn, table, "pg_get_expr(c.relpartbound, c.oid)"):
        match = _BOUND.match(bound or "")
        if match is None:  # DEFAULT, or a hash partition
            continue
        for quoted, bare in _LITERAL.findall(match["list"] or match["low"] or ""):
            if quoted or bare not in ("", "NULL", "MINVALUE", "MAXVALUE"):
                found.append(escape(quoted.replace("''", "'") if quoted else bare))
    return found


def accepted(
    conn: psycopg.Connection[Any],
    table: Table,
    column: str,
    candidates: Sequence[str],
    wanted: int | None = None,
) -> list[str]:
    """The candidates (COPY-escaped text, in order) that some leaf partition accepts.

    ``wanted``: as many as needed, if fewer than all (see :func:`passing`).
    """
    constraints = _of_partitions(conn, table, "pg_get_partition_constraintdef(c.oid)", leaves=True)
    if not constraints:
        return []
    if any(c is None for c in constraints):  # a lone default partition takes anything
        return list(candidates)
    fits = sql.SQL(" OR ").join(condition(c) for c in constraints if c is not None)
    try:
        return passing(conn, table.column(column), fits, candidates, wanted)
    except psycopg.errors.UndefinedColumn:  # a sub-partition keyed by another column
        raise CannotGenerate(
            f"{table.qualified} has partitions keyed by columns other than {column}; the"
            " synthetic seeder places rows by a one-column key only: set its rows to 0"
        ) from None


def condition(text: str) -> sql.Composable:
    """A condition the server wrote (a constraint's), to compose into a query.

    A '%' in it (the modulo operator, a literal's) is doubled: the queries
    that evaluate it have parameters.
    """
    return sql.SQL("({})").format(sql.SQL(text.replace("%", "%%")))


_MOST_JUDGED = 200_000  # candidates in one query: the array is built in memory, both sides


def passing(
    conn: psycopg.Connection[Any],
    column: Column,
    fits: sql.Composable,
    candidates: Sequence[str],
    wanted: int | None = None,
) -> list[str]:
    """The candidates (COPY-escaped text, in order) for which ``fits`` holds.

    The conditions name the column unqualified; only the cast value carries
    that name here. Definitions come from the server itself. With
    ``wanted``, the candidates go in slices and stop once that many pass: a
    unique column tries four candidates per row to be safe, and most pass.
    The first ``wanted`` found are the same either way.
    """
    judge = _Judge(conn, column, fits)
    if wanted is None:
        return judge(candidates)
    found: list[str] = []
    start, size = 0, min(wanted + wanted // 8 + 64, _MOST_JUDGED)
    while start < len(candidates) and len(found) < wanted:
        chunk = candidates[start : start + size]
        start += len(chunk)
        found += judge(chunk)
        rate = max(len(found) / start, 0.01)
        size = min(int((wanted - len(found)) / rate * 1.25) + 64, _MOST_JUDGED)
    return found


class _Judge:
    """Puts candidates to a condition, one query for all of them.

    A condition that raises for some values (``CHECK (num::integer > 0)`` on
    a text column the seeder filled with words; a date's ``extract`` of a
    value out of range) fails that whole query. The candidates are then
    judged one by one by a temporary function that takes the error as
    "does not pass" (a subtransaction per value: slower, and only then).
    """

    def __init__(self, conn: psycopg.Connection[Any], column: Column, fits: sql.Composable):
        self.conn, self.column, self.fits = conn, column, fits
        self.forgiving = False

    def __call__(self, candidates: Sequence[str]) -> list[str]:
        if not self.forgiving:
            try:
                return self._run(self._query(), candidates)
            except psycopg.DataError:
                self.forgiving = True
        return self._run(self._forgiving(), candidates)

    def _query(self) -> sql.Composed:
        return sql.SQL(
            "SELECT u.__pe_v FROM unnest(%s::text[]) WITH ORDINALITY AS u(__pe_v, __pe_i)"
            " CROSS JOIN LATERAL (SELECT CAST(u.__pe_v AS {t}) AS {c}) AS __pe_row"
            " WHERE {fits} ORDER BY u.__pe_i"
        ).format(
            t=sql.SQL(self.column.checked_as), c=sql.Identifier(self.column.name), fits=self.fits
        )

    def _forgiving(self) -> sql.SQL:
        body = sql.SQL(
            "BEGIN RETURN coalesce((SELECT {fits} FROM (SELECT CAST(__pe_v AS {t}) AS {c})"
            " AS __pe_row), false); EXCEPTION WHEN data_exception THEN RETURN false; END"
        ).format(
            t=sql.SQL(self.column.checked_as), c=sql.Identifier(self.column.name), fits=self.fits
        )
        create = sql.SQL(
            "CREATE OR REPLACE FUNCTION pg_temp.__pe_fits(__pe_v text) RETURNS boolean"
            " LANGUAGE plpgsql AS $__pe_fits$ {} $__pe_fits$"
        ).format(body)
        try:
            with self.conn.transaction():
                self.conn.execute(create, ())
        except psycopg.errors.InsufficientPrivilege:
            raise CannotGenerate(
                f"column {self.column.name}: its check raises an error for some of the values the"
                " seeder tried, and setting those aside needs a temporary function, which this"
                " role may not create (GRANT TEMPORARY ON DATABASE … TO it); or give the column"
                " values that pass in the recipe (columns: {"
                + self.column.name
                + ": {values: [...]}})"
            ) from None
        return sql.SQL(
            "SELECT u.__pe_v FROM unnest(%s::text[]) WITH ORDINALITY AS u(__pe_v, __pe_i)"
            " WHERE pg_temp.__pe_fits(u.__pe_v) ORDER BY u.__pe_i"
        )

    def _run(self, query: sql.SQL | sql.Composed, candidates: Sequence[str]) -> list[str]:
        with self.conn.transaction():
            found = self.conn.execute(query, ([unescape(c) for c in candidates],)).fetchall()
        return [escape(row[0]) for row in found]
