"""Rows that break a CHECK over several columns, given the fewest changes that make them pass.

``CHECK (num_nonnulls(user_id, team_id) = 1)`` (a row belongs to a user or
to a team), ``CHECK ((shipped_at IS NULL) = (carrier IS NULL))``: columns
generated one by one break such a check in most rows. What makes a row
pass is the server's to say, as for one-column checks
(:mod:`seeders.checks`), so no expression is parsed here: the check is
dropped while the rows load, and each row that breaks it takes the first
repair the server says passes it — NULL, or another row's value, in one
of its columns, then in two, and so on — tried on the row itself.
Re-adding the check then validates every row: a row no such change fixes
(``a + b <= 100``) fails the seed, and the error names the check, as it
did before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from itertools import combinations
from typing import Any

import psycopg
from psycopg import sql

from seeders.names import own_rows
from seeders.schema import Check, Column, Schema, Table

MAX_COLUMNS = 4  # columns of one check a repair may change (80 repairs at most)
ROTATED = 8  # the largest group whose every share of rows tries every repair

# What a repair does to one column: NULL, or a value another row has there.
_NULL, _BORROWED = "null", "borrowed"


def _changeable(
    table: Table, check: Check, never_null: Collection[tuple[str, str]]
) -> list[tuple[Column, tuple[str, ...]]]:
    """The check's columns a repair may change, each with what it may do to them.

    NULL where the column allows it; another row's value where that cannot
    break a unique key (a foreign key's value exists in its parent).
    """
    found = []
    for name in check.columns:
        column = table.column(name)
        if not column.writable:
            continue
        ways = []
        if column.nullable and (table.qualified, name) not in never_null:
            ways.append(_NULL)
        if name not in table.unique_members and not table.is_unique(name):
            ways.append(_BORROWED)
        if ways:
            found.append((column, tuple(ways)))
    return found[:MAX_COLUMNS]


def relaxed(
    schema: Schema,
    written: Collection[str],
    handled: Callable[[Table, Check], bool],
    never_null: Collection[tuple[str, str]] = frozenset(),
) -> dict[str, list[Check]]:
    """By table, the checks over several columns a repair could make a row pass (pure).

    Not one the generator already keeps (``handled``: two ordered columns),
    a domain's (not the table's to drop) or one inherited from a parent.
    """
    found: dict[str, list[Check]] = {}
    for name in written:
        table = schema.table(name)
        for check in table.checks:
            if len(check.columns) < 2 or check.domain or check.inherited or handled(table, check):
                continue
            if _changeable(table, check, never_null):
                found.setdefault(name, []).append(check)
    return found


Repair = tuple[tuple[Column, str], ...]


def repairs(changeable: list[tuple[Column, tuple[str, ...]]]) -> list[list[Repair]]:
    """Every repair, grouped by how many columns it changes, fewest first (pure)."""
    groups: list[list[Repair]] = []
    for size in range(1, len(changeable) + 1):
        group: list[Repair] = []
        for chosen in combinations(changeable, size):
            options: list[Repair] = [()]
            for column, ways in chosen:
                options = [(*o, (column, way)) for o in options for way in ways]
            group += options
        groups.append(group)
    return groups


def repair(
    conn: psycopg.Connection[Any],
    schema: Schema,
    checks: Mapping[str, list[Check]],
    never_null: Collection[tuple[str, str]] = frozenset(),
) -> None:
    """Give each loaded row that breaks one of ``checks`` the fewest changes that make it pass.

    Repairs changing as many columns share the rows out between them (by a
    hash of the row's position, :func:`_schedule`), so "a user's or a
    team's" ends up both, not all one.
    """
    for name, found in checks.items():
        table = schema.table(name)
        for check in found:
            if not _breaking(conn, table, check):
                continue
            for group in repairs(_changeable(table, check, never_null)):
                for chosen, share in _schedule(group):
                    conn.execute(_repair(table, check, chosen, share, len(group)))
                if not _breaking(conn, table, check):
                    break


def _schedule(group: list[Repair]) -> list[tuple[Repair, int | None]]:
    """The order to try a group's repairs in, each on a share of the rows or on all (pure).

    Each share of the rows tries every repair, starting from its own, so
    one that fits many rows does not take them all; a large group is
    shared once and then tried in order on what is left (a scan each).
    """
    size = len(group)
    if size == 1:
        return [(group[0], None)]
    if size <= ROTATED:
        return [(group[(s + k) % size], s) for s in range(size) for k in range(size)]
    return [*((r, s) for s, r in enumerate(group)), *((r, None) for r in group)]


def _breaking(conn: psycopg.Connection[Any], table: Table, check: Check) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE ({}) IS FALSE)").format(
        own_rows(table), sql.SQL(check.condition)
    )
    row = conn.execute(query).fetchone()
    return bool(row and row[0])


def _repair(
    table: Table, check: Check, chosen: Repair, share: int | None, shares: int
) -> sql.Composed:
    """The repair for each row that breaks the check and would pass with it.

    Inside the subquery the changed columns' names are its own values; the
    check's other columns are the row's (the definition is the server's,
    run without parameters).
    """
    fits = sql.SQL("({})").format(sql.SQL(check.condition))
    values = []
    for column, way in chosen:
        name = sql.Identifier(column.name)
        if way == _NULL:
            values.append(sql.SQL("CAST(NULL AS {})").format(sql.SQL(column.checked_as)))
        else:
            values.append(
                sql.SQL("(SELECT __pe_o.{c} FROM {rows} AS __pe_o WHERE __pe_o.{c} IS NOT NULL"
                        " LIMIT 1)").format(c=name, rows=own_rows(table))
            )  # fmt: skip
    names = [sql.Identifier(column.name) for column, _ in chosen]
    mine: sql.Composable = sql.SQL("")
    if share is not None:
        mine = sql.SQL(" AND abs(hashtext(ctid::text)) % {} = {}").format(
            sql.Literal(shares), sql.Literal(share)
        )
    return sql.SQL(
        "WITH __pe_value AS MATERIALIZED (SELECT {values})"
        " UPDATE {rows} SET ({names}) = (SELECT * FROM __pe_value)"
        " WHERE ({fits}) IS FALSE{mine}"
        " AND (SELECT ({fits}) IS NOT FALSE FROM (SELECT * FROM __pe_value) AS __pe_r({names}))"
    ).format(
        values=sql.SQL(", ").join(values),
        rows=own_rows(table),
        names=sql.SQL(", ").join(names),
        fits=fits,
        mine=mine,
    )
