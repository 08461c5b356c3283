"""Loading generated rows with COPY, atomically, without per-row FK checks.

One transaction: drop the foreign keys, TRUNCATE, COPY every table in load
order, move identity/serial sequences past the loaded keys, re-add the
foreign keys (each validated in a single pass instead of a trigger per row).
A failure anywhere rolls everything back: the previous data is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from seeders.schema import Schema, Table

Progress = Callable[[str, int], None]  # (table, rows just written)
ChunkSource = Callable[[str], Iterable[tuple[int, bytes]]]


@dataclass
class LoadReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds else 0.0


def _ident(qualified: str) -> sql.Composable:
    schema, _, name = qualified.partition(".")
    return sql.Identifier(schema, name)


def _foreign_keys(conn: psycopg.Connection[Any], tables: list[str]) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of every FK on the given tables."""
    rows = conn.execute(
        """
        SELECT n.nspname || '.' || c.relname, con.conname, pg_get_constraintdef(con.oid)
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE con.contype = 'f' AND n.nspname || '.' || c.relname = ANY(%s)
        ORDER BY 1, 2
        """,
        (tables,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _reset_sequences(conn: psycopg.Connection[Any], table: Table) -> None:
    for column in table.columns:
        if not column.identity:
            continue
        seq = conn.execute(
            "SELECT pg_get_serial_sequence(%s, %s)", (table.qualified, column.name)
        ).fetchone()
        if seq and seq[0]:
            conn.execute(
                sql.SQL(
                    "SELECT setval({}, COALESCE((SELECT max({}) FROM {}), 0) + 1, false)"
                ).format(sql.Literal(seq[0]), sql.Identifier(column.name), _ident(table.qualified))
            )


def load(
    conn: psycopg.Connection[Any],
    schema: Schema,
    order: Iterable[str],
    columns_of: Callable[[Table], list[str]],
    chunks: ChunkSource,
    progress: Progress | None = None,
    before_commit: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> LoadReport:
    """Replace the contents of every table in ``order`` with the given rows.

    ``before_commit`` runs inside the transaction after everything is loaded;
    raising there rolls the whole load back (the leak check uses this).
    """
    tables = list(order)
    report = LoadReport()
    started = time.perf_counter()
    with conn.transaction():
        fks = _foreign_keys(conn, tables)
        for owner, constraint, _ in fks:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    _ident(owner), sql.Identifier(constraint)
                )
            )
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(_ident(t) for t in tables)
                )
            )
        with conn.cursor() as cur:
            for name in tables:
                target = schema.table(name)
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in columns_of(target))
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(_ident(name), columns)
                report.rows[name] = 0
                with cur.copy(copy_sql) as copy:
                    for rows, chunk in chunks(name):
                        copy.write(chunk)
                        report.rows[name] += rows
                        if progress:
                            progress(name, rows)
                _reset_sequences(conn, target)
        for owner, constraint, definition in fks:
            # The definition comes from pg_get_constraintdef, i.e. from the server itself.
            clause = sql.SQL(definition)
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    _ident(owner), sql.Identifier(constraint), clause
                )
            )
        if before_commit is not None:
            before_commit(conn)
    report.seconds = time.perf_counter() - started
    return report
