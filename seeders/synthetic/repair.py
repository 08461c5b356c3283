"""Rows that break a CHECK over several columns, given the fewest changes that make them pass.

``CHECK (num_nonnulls(user_id, team_id) = 1)`` (a row belongs to a user or
to a team), ``CHECK ((shipped_at IS NULL) = (carrier IS NULL))``: columns
generated one by one break such a check in most rows. What makes a row
pass is the server's to say, as for one-column checks
(:mod:`seeders.synthetic.checks`), so no expression is parsed here: the check is
dropped while the rows load, and each row that breaks it takes the first
repair the server says passes it — NULL, another row's value, or its own
value shrunk, in one of its columns, then in two, and so on — tried on
the row itself. A borrowed value is the first of a few dozen other rows'
values that fits this row: ``char_length(first_name) + char_length(last_name)
<= 12`` borrows a short name. A shrunk value is the row's own number moved
toward zero (a date or time toward the check's other one of its kind) by
the first of a few dozen factors that fits: ``a + b <= 100`` or
``ends_at - starts_at <= interval '7 days'``, which no other row's value
may satisfy, keep the row's proportions. A candidate passes only if every
check of the table over the columns it changes passes too, so mending one
check never breaks another (the server would refuse the row).
Re-adding the check then validates every row: a row no such change fixes
(``a > b + 10000000`` with small ``a``) fails the seed, and the error
names the check, as it did before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from itertools import combinations
from typing import Any

import psycopg
from psycopg import sql

from seeders.schema.model import Category, Check, Column, Schema, Table
from seeders.schema.names import own_rows

MAX_COLUMNS = 4  # columns of one check a repair may change (255 repairs at most)
ROTATED = 8  # the largest group whose every share of rows tries every repair
BORROWED = 64  # other rows' values (or shrinking factors) a repair tries, per row
SAMPLED = 200  # breaking rows every repair is first tried on: none fixed, none tried further
SMALLEST = 32  # the last factor but zero is 2 ** -SMALLEST

# What a repair does to one column: NULL, a value another row has there, or
# the row's own value moved toward zero (or toward the check's other date).
_NULL, _BORROWED, _SHRUNK = "null", "borrowed", "shrunk"
_TOWARD_ZERO = (Category.INTEGER, Category.NUMERIC, Category.FLOAT, Category.INTERVAL)
_TOWARD_PARTNER = (Category.DATE, Category.TIMESTAMP, Category.TIMESTAMPTZ)
_FACTOR = sql.SQL("__pe_p.__pe_f")  # a candidate's shrinking factor (see _factors)


def _changeable(
    table: Table, check: Check, never_null: Collection[tuple[str, str]]
) -> list[tuple[Column, tuple[str, ...]]]:
    """The check's columns a repair may change, each with what it may do to them.

    NULL where the column allows it; another row's value, or its own shrunk,
    where that cannot break a unique key (a foreign key's value exists in
    its parent; a shrunk one may not, so a foreign key's column is never
    shrunk).
    """
    keys = {name for fk in table.foreign_keys for name in fk.columns}
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
            if name not in keys and _shrunk(table, check, column) is not None:
                ways.append(_SHRUNK)
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
            groups = repairs(_changeable(table, check, never_null))
            if _hopeless(conn, table, check, groups):
                continue  # re-adding the check fails the seed, naming it, at once
            for group in groups:
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


def _value(
    table: Table, check: Check, column: Column, way: str, factor: sql.Composable
) -> sql.Composable:
    """A candidate's value for one changed column, typed as the column's checks read it."""
    if way == _NULL:
        return sql.SQL("CAST(NULL AS {})").format(sql.SQL(column.checked_as))
    if way == _BORROWED:
        return sql.SQL("__pe_p.{}").format(sql.Identifier(column.name))
    shrunk = _shrunk(table, check, column, factor)
    assert shrunk is not None  # only offered where it exists (_changeable)
    return sql.SQL("CAST({} AS {})").format(shrunk, sql.SQL(column.checked_as))


def _shrunk(
    table: Table, check: Check, column: Column, factor: sql.Composable = _FACTOR
) -> sql.Composable | None:
    """The row's value of ``column`` moved toward zero by ``factor``, or None.

    A date or time has no zero: it moves toward the check's first other
    column of its kind (``ends_at`` toward ``starts_at``), so a span shrinks
    and the order of the two is kept. Integers and scaled numerics round
    to what their column holds.
    """
    if column.is_array:
        return None
    me = sql.SQL("{}.{}").format(sql.Identifier(table.name), sql.Identifier(column.name))
    if column.category in _TOWARD_PARTNER:
        partners = [
            other for other in check.columns
            if other != column.name and table.column(other).category is column.category
            and not table.column(other).is_array
        ]  # fmt: skip
        if not partners:
            return None
        partner = sql.SQL("{}.{}").format(sql.Identifier(table.name), sql.Identifier(partners[0]))
        if column.category is Category.DATE:  # days apart: an integer
            return sql.SQL("{p} + CAST(round(({v} - {p}) * {f}) AS integer)").format(
                p=partner, v=me, f=factor
            )
        return sql.SQL("{p} + ({v} - {p}) * {f}").format(p=partner, v=me, f=factor)
    if column.category not in _TOWARD_ZERO:
        return None
    if column.category is Category.INTEGER:
        return sql.SQL("round({} * {})").format(me, factor)
    if column.category is Category.NUMERIC:
        scaled = sql.SQL("{} * CAST({} AS numeric)").format(me, factor)
        if column.numeric_scale is None:
            return scaled
        return sql.SQL("round({}, {})").format(scaled, sql.Literal(column.numeric_scale))
    return sql.SQL("{} * {}").format(me, factor)


def _factors(pool: sql.Composable) -> sql.Composed:
    """``pool`` with a shrinking factor per candidate, largest first: 1 … 2^-SMALLEST, then 0."""
    return sql.SQL(
        "(SELECT __pe_q.*, CASE WHEN __pe_q.__pe_i = __pe_q.__pe_n - 1 THEN 0::float8"
        " ELSE power(2::float8, -{s}::float8 * __pe_q.__pe_i / greatest(__pe_q.__pe_n - 2, 1))"
        " END"
        " AS __pe_f FROM (SELECT __pe_o.*, count(*) OVER () AS __pe_n FROM {pool} AS __pe_o)"
        " AS __pe_q)"
    ).format(s=sql.Literal(SMALLEST), pool=pool)


def _guards(table: Table, changed: Collection[str]) -> list[Check]:
    """The table's checks a change to ``changed`` columns could break (the domains' too)."""
    return [c for c in table.checks if set(c.columns) & set(changed)]


def _hopeless(
    conn: psycopg.Connection[Any], table: Table, check: Check, groups: list[list[Repair]]
) -> bool:
    """Whether no repair fixes any of a sample of the breaking rows (tried, then undone).

    A check no change satisfies (``a > b + 10000000`` over small numbers)
    would otherwise cost every repair's search over every breaking row, a
    minute for a million rows, only to fail when it is re-added.
    """
    me = sql.Identifier(table.name)
    sampled = conn.execute(
        sql.SQL("SELECT {}.ctid::text FROM {} WHERE ({}) IS FALSE LIMIT {}").format(
            me, own_rows(table), sql.SQL(check.condition), sql.Literal(SAMPLED)
        )
    ).fetchall()
    ctids = sql.Literal([str(r[0]) for r in sampled])
    # A repaired row gets a new ctid: the sample's rows still found are the unrepaired.
    only = sql.SQL(" AND {}.ctid = ANY (CAST({} AS tid[]))").format(me, ctids)
    with conn.transaction(force_rollback=True):
        for group in groups:
            for chosen in group:
                conn.execute(_repair(table, check, chosen, None, 1, only))
        left = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}.ctid = ANY (CAST({} AS tid[]))").format(
                own_rows(table), me, ctids
            )
        ).fetchone()
    return bool(left and left[0] == len(sampled))


def _breaking(conn: psycopg.Connection[Any], table: Table, check: Check) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE ({}) IS FALSE)").format(
        own_rows(table), sql.SQL(check.condition)
    )
    row = conn.execute(query).fetchone()
    return bool(row and row[0])


def _repair(
    table: Table,
    check: Check,
    chosen: Repair,
    share: int | None,
    shares: int,
    only: sql.Composable | None = None,
) -> sql.Composed:
    """The repair for each row that breaks the check and would pass with it.

    A borrowed value is chosen per row: the first of up to ``BORROWED``
    other rows' values (taken together, where a repair borrows several
    columns) with which the server says this row passes, the search
    starting at a place of the row's own so rows do not all take one
    value. A shrunk one takes the first factor that passes, largest
    first, and then, if the row still passes with it, that factor times a
    fraction of the row's own: the largest alone would put every repaired
    row just inside the check's bound. Inside the subqueries the changed
    columns' names are the candidate's values; the check's other columns
    are the row's (the definitions are the server's, run without
    parameters).
    """
    me = sql.Identifier(table.name)
    names = sql.SQL(", ").join(sql.Identifier(column.name) for column, _ in chosen)
    borrowed = [sql.Identifier(column.name) for column, way in chosen if way == _BORROWED]
    shrinks = any(way == _SHRUNK for _, way in chosen)
    # The candidate must pass the table's other checks over what it changes too.
    passing = sql.SQL(" AND ").join(
        sql.SQL("({}) IS NOT FALSE").format(sql.SQL(c.condition))
        for c in _guards(table, [column.name for column, _ in chosen])
    )

    def first_passing(
        candidates: sql.Composable, factor: sql.Composable, whole: bool, order: str = ""
    ) -> sql.Composed:
        """The first of ``candidates`` the row passes with: its values, or the whole candidate."""
        values = sql.SQL(", ").join(_value(table, check, c, way, factor) for c, way in chosen)
        return sql.SQL(
            "SELECT {what} FROM {candidates}"
            " WHERE (SELECT {passing} FROM (SELECT {values}) AS __pe_r({names})){order} LIMIT 1"
        ).format(what=sql.SQL("__pe_p.*") if whole else values, candidates=candidates,
                 passing=passing, values=values, names=names, order=sql.SQL(order))  # fmt: skip

    pool: sql.Composable = sql.SQL("(SELECT 0 AS __pe_i)")  # NULLs only: one candidate
    start: sql.Composable = sql.Literal(0)
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
            me
        )
    elif shrinks:
        pool = sql.SQL("(SELECT __pe_i FROM generate_series(0, {}) AS __pe_i)").format(
            sql.Literal(BORROWED - 1)
        )
    if shrinks:
        pool = _factors(pool)
    # The row's own place first, then the rest: a scan that stops at the first fit (a
    # materialized CTE reads back in the order it was written).
    ordered = sql.SQL(
        "(SELECT * FROM __pe_pool WHERE __pe_i >= {s})"
        " UNION ALL (SELECT * FROM __pe_pool WHERE __pe_i < {s})"
    ).format(s=start)
    candidate = first_passing(sql.SQL("({}) AS __pe_p").format(ordered), _FACTOR, shrinks)
    if shrinks:  # then the factor times a fraction of the row's own, if that passes too
        fraction = sql.SQL("(1 + abs(hashtext({}.ctid::text || 'f')) % 1000) / 1000.0").format(me)
        scaled = sql.SQL(
            "({}) AS __pe_p CROSS JOIN (VALUES (0, {}), (1, 1.0)) AS __pe_s(__pe_o, __pe_m)"
        ).format(candidate, fraction)
        factor = sql.SQL("__pe_p.__pe_f * __pe_s.__pe_m")
        candidate = first_passing(scaled, factor, False, " ORDER BY __pe_s.__pe_o")
    mine: sql.Composable = only or sql.SQL("")
    if share is not None:
        mine = sql.SQL("{} AND abs(hashtext({}.ctid::text)) % {} = {}").format(
            mine, me, sql.Literal(shares), sql.Literal(share)
        )
    # Each breaking row's fix found once (a LATERAL search), then written by ctid.
    fixed = [sql.Identifier(f"__pe_f{k}") for k in range(len(chosen))]
    return sql.SQL(
        "WITH __pe_pool AS MATERIALIZED {pool},"
        " __pe_fix AS MATERIALIZED (SELECT {me}.ctid AS __pe_tid, __pe_c.*"
        " FROM {rows} CROSS JOIN LATERAL ({candidate}) AS __pe_c({fixed})"
        " WHERE ({fits}) IS FALSE{mine})"
        " UPDATE {rows} SET ({names}) = ROW({new})"
        " FROM __pe_fix WHERE {me}.ctid = __pe_fix.__pe_tid"
    ).format(
        pool=pool,
        me=me,
        rows=own_rows(table),
        candidate=candidate,
        fixed=sql.SQL(", ").join(fixed),
        fits=sql.SQL(check.condition),
        mine=mine,
        names=names,
        new=sql.SQL(", ").join(sql.SQL("__pe_fix.{}").format(f) for f in fixed),
    )
