"""Rows that break a CHECK over several columns, given the fewest changes that make them pass.

``CHECK (num_nonnulls(user_id, team_id) = 1)`` (a row belongs to a user or
to a team), ``CHECK ((shipped_at IS NULL) = (carrier IS NULL))``: columns
generated one by one break such a check in most rows. What makes a row
pass is the server's to say, as for one-column checks
(:mod:`seeders.checks`), so no expression is parsed here: the check is
dropped while the rows load, and each row that breaks it takes the first
repair the server says passes it — NULL, or another row's value, in one
of its columns, then in two, and so on — tried on the row itself (a
borrowed value is the first of a few dozen other rows' values that fits
this row: ``char_length(first_name) + char_length(last_name) <= 12``
borrows a short name).
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
BORROWED = 64  # other rows' values a borrowing repair tries, per row

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

    A borrowed value is chosen per row: the first of up to ``BORROWED``
    other rows' values (taken together, where a repair borrows several
    columns) with which the server says this row passes, the search
    starting at a place of the row's own so rows do not all take one
    value. Inside the subqueries the changed columns' names are the
    candidate's values; the check's other columns are the row's (the
    definition is the server's, run without parameters).
    """
    fits = sql.SQL("({})").format(sql.SQL(check.condition))
    names = [sql.Identifier(column.name) for column, _ in chosen]
    borrowed = [sql.Identifier(column.name) for column, way in chosen if way == _BORROWED]
    values = [
        sql.SQL("CAST(NULL AS {})").format(sql.SQL(column.checked_as))
        if way == _NULL
        else sql.SQL("__pe_p.{}").format(sql.Identifier(column.name))
        for column, way in chosen
    ]
    pool: sql.Composable = sql.SQL("(SELECT 0 AS __pe_i)")  # NULLs only: one candidate
    if borrowed:
        pool = sql.SQL(
            "(SELECT {cols}, row_number() OVER () - 1 AS __pe_i FROM {rows}"
            " WHERE {present} LIMIT {n})"
        ).format(
            cols=sql.SQL(", ").join(borrowed),
            rows=own_rows(table),
            present=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(b) for b in borrowed),
            n=sql.Literal(BORROWED),
        )
    start = sql.SQL("abs(hashtext({}.ctid::text)) % (SELECT count(*) FROM __pe_pool)").format(
        sql.Identifier(table.name)
    )
    # The row's own place first, then the rest: a scan that stops at the first fit.
    ordered = sql.SQL(
        "(SELECT * FROM __pe_pool WHERE __pe_i >= {s}"
        " UNION ALL SELECT * FROM __pe_pool WHERE __pe_i < {s})"
    ).format(s=start)
    candidate = sql.SQL(
        "SELECT {values} FROM {ordered} AS __pe_p"
        " WHERE (SELECT ({fits}) IS NOT FALSE FROM (SELECT {values}) AS __pe_r({names}))"
        " LIMIT 1"
    ).format(values=sql.SQL(", ").join(values), ordered=ordered, fits=fits,
             names=sql.SQL(", ").join(names))  # fmt: skip
    mine: sql.Composable = sql.SQL("")
    if share is not None:
        mine = sql.SQL(" AND abs(hashtext({}.ctid::text)) % {} = {}").format(
            sql.Identifier(table.name), sql.Literal(shares), sql.Literal(share)
        )
    # Each breaking row's fix found once (a LATERAL search), then written by ctid.
    fixed = [sql.Identifier(f"__pe_f{k}") for k in range(len(names))]
    return sql.SQL(
        "WITH __pe_pool AS MATERIALIZED {pool},"
        " __pe_fix AS MATERIALIZED (SELECT {me}.ctid AS __pe_tid, __pe_c.*"
        " FROM {rows} CROSS JOIN LATERAL ({candidate}) AS __pe_c({fixed})"
        " WHERE ({fits}) IS FALSE{mine})"
        " UPDATE {rows} SET ({names}) = ROW({new})"
        " FROM __pe_fix WHERE {me}.ctid = __pe_fix.__pe_tid"
    ).format(
        pool=pool,
        me=sql.Identifier(table.name),
        rows=own_rows(table),
        candidate=candidate,
        fixed=sql.SQL(", ").join(fixed),
        fits=fits,
        mine=mine,
        names=sql.SQL(", ").join(names),
        new=sql.SQL(", ").join(sql.SQL("__pe_fix.{}").format(f) for f in fixed),
    )
