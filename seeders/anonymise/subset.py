"""Subsetting: a ``where`` on chosen root tables, and related rows follow through the FK graph.

Rows of the roots that match are *owned*; the rows of child tables that
reference owned rows are owned too (orders of the chosen customers, their
lines, their shipments), transitively. Every row an included row references
is included for integrity (the products those lines name), transitively,
without pulling in *its* children — so a subset stays the size of what was
asked for. Self-references are followed upward only (the referrer chain of
a chosen customer, not everyone they referred). Tables no path reaches stay
empty. Cycles converge: sets only grow, and a row is visited once.

Runs on the source inside the anonymiser's read-only snapshot, with plain
SELECTs (a replica allows no temporary tables); memory grows with the size
of the subset, never with the source. Every table on a path needs a primary
key, by which rows are identified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from seeders.schema.model import ForeignKey, Schema, Table
from seeders.schema.names import own_rows

Key = tuple[str, ...]  # a row's primary key values as text


class SubsetError(ValueError):
    pass


def _cols(table: Table, columns: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(table.schema, table.name, c)) for c in columns
    )


def member_of(table: Table, columns: tuple[str, ...], values: Iterable[Key]) -> sql.Composable:
    """``(columns) IN values``, compared as text, with the values inlined as arrays."""
    rows = list(values)
    if not rows:
        return sql.SQL("false")
    arrays = sql.SQL(", ").join(
        sql.SQL("{}::text[]").format(sql.Literal([row[i] for row in rows]))
        for i in range(len(columns))
    )
    return sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(_cols(table, columns), arrays)


class _Walk:
    def __init__(self, conn: psycopg.Connection[Any], schema: Schema) -> None:
        self.conn = conn
        self.tables = {t.qualified: t for t in schema.tables}
        self.owned: dict[str, set[Key]] = {name: set() for name in self.tables}
        self.kept: dict[str, set[Key]] = {name: set() for name in self.tables}
        self.down_work: dict[str, set[Key]] = {name: set() for name in self.tables}
        self.up_work: dict[str, set[Key]] = {name: set() for name in self.tables}
        self.children: dict[str, list[tuple[Table, ForeignKey]]] = {n: [] for n in self.tables}
        for table in schema.tables:
            for fk in table.foreign_keys:
                if fk.ref_table in self.tables and fk.ref_table != table.qualified:
                    self.children[fk.ref_table].append((table, fk))

    def table(self, name: str) -> Table:
        table = self.tables[name]
        if not table.primary_key:
            raise SubsetError(f"{name} has no primary key; subsetting identifies rows by it")
        return table

    def select(
        self, table: Table, columns: tuple[str, ...], where: sql.Composable, distinct: bool = False
    ) -> set[Key]:
        query = sql.SQL("SELECT {}{} FROM {} WHERE {}").format(
            sql.SQL("DISTINCT ") if distinct else sql.SQL(""),
            _cols(table, columns),
            own_rows(table),
            where,
        )
        return {tuple(row) for row in self.conn.execute(query).fetchall()}

    def include(self, name: str, keys: set[Key], owned: bool) -> None:
        """Record keys and queue what is new: owned rows go down, every new row goes up."""
        included = self.owned[name] | self.kept[name]
        new_owned = keys - self.owned[name] if owned else set()
        new_any = (keys - included) | new_owned
        self.owned[name] |= new_owned
        if not owned:
            self.kept[name] |= new_any
        self.down_work[name] |= new_owned
        self.up_work[name] |= new_any

    def run(self, roots: Mapping[str, str]) -> dict[str, set[Key]]:
        for name, where in roots.items():
            table = self.table(name)
            self.include(name, self.select(table, table.primary_key, sql.SQL(where)), owned=True)
        while any(self.down_work.values()) or any(self.up_work.values()):
            for name in self.tables:
                down, up = self.down_work[name], self.up_work[name]
                self.down_work[name], self.up_work[name] = set(), set()
                if down:
                    self._down(name, down)
                if up:
                    self._up(name, up)
        return {name: self.owned[name] | self.kept[name] for name in self.tables}

    def _down(self, name: str, keys: set[Key]) -> None:
        parent = self.table(name)
        for listed, fk in self.children[name]:
            child = self.table(listed.qualified)
            if fk.ref_columns == parent.primary_key:
                refs = keys
            else:
                own = member_of(parent, parent.primary_key, keys)
                refs = self.select(parent, fk.ref_columns, own)
            found = self.select(child, child.primary_key, member_of(child, fk.columns, refs))
            self.include(child.qualified, found, owned=True)

    def _up(self, name: str, keys: set[Key]) -> None:
        table = self.table(name)
        for fk in table.foreign_keys:
            if fk.ref_table not in self.tables:
                continue
            parent = self.table(fk.ref_table)
            not_null = sql.SQL(" AND ").join(
                sql.SQL("{} IS NOT NULL").format(sql.Identifier(table.schema, table.name, c))
                for c in fk.columns
            )
            where = sql.SQL("{} AND {}").format(member_of(table, table.primary_key, keys), not_null)
            refs = self.select(table, fk.columns, where, distinct=True)
            found = self.select(parent, parent.primary_key, member_of(parent, fk.ref_columns, refs))
            self.include(parent.qualified, found, owned=False)


def check_roots(schema: Schema, roots: Mapping[str, str]) -> dict[str, str]:
    """Root tables by qualified name; every table must have a primary key to be subset."""
    qualified = {}
    for name, where in roots.items():
        try:
            qualified[schema.table(name).qualified] = where
        except KeyError:
            known = ", ".join(t.qualified for t in schema.tables)
            raise SubsetError(f"subset.{name}: no such table; tables: {known}") from None
    keyless = [t.qualified for t in schema.tables if not t.primary_key]
    if keyless:
        raise SubsetError(f"subsetting identifies rows by primary key; none on: {keyless}")
    return qualified


def compute(
    conn: psycopg.Connection[Any], schema: Schema, roots: Mapping[str, str]
) -> dict[str, set[Key]]:
    """Primary keys of every table's rows in the subset (qualified table name → keys)."""
    return _Walk(conn, schema).run(check_roots(schema, roots))


def condition(table: Table, keys: set[Key]) -> sql.Composable:
    """The WHERE clause that reads exactly the subset's rows of ``table``."""
    return member_of(table, table.primary_key, sorted(keys))
