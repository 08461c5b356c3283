"""Loading generated rows with COPY, atomically, without per-row FK checks.

One transaction: drop the foreign keys and the indexes, TRUNCATE, COPY every
table in load order, move every sequence a column draws from (identity,
serial, or one several tables share) past the values it holds anywhere,
rebuild the indexes (one sort each instead of a B-tree insert per row and
index: about 40 % less work for a table with two keys) and re-add the
foreign keys (each validated in a single pass instead of a trigger per row).
A failure anywhere rolls everything back: the previous data is untouched.
Unique keys are still enforced: a duplicate fails the rebuild, and the load.
Materialized views built on the loaded tables (through views and other
materialized views too) are refreshed, dependencies first, as pg_restore
does: a report over the data shows the data. One the app left unpopulated
(``WITH NO DATA``) stays so.
The tables' own triggers are off meanwhile (as pg_restore's
``--disable-triggers``), each switched back on as it was before commit: the
rows land as given, not as an audit trigger or a "touch updated_at" one
would make them, and no trigger writes rows of its own into loaded tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from seeders.copy import binary_copy
from seeders.schema.model import Check, Schema, Table

# (table, rows just written); called with 0 rows as a table's rows begin, so
# that a table whose rows come in one chunk still has a rate to show.
Progress = Callable[[str, int], None]
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


def _regclasses(conn: psycopg.Connection[Any], tables: list[str]) -> list[str]:
    """The tables' names quoted as ``::regclass`` reads them."""
    return [_ident(t).as_string(conn) for t in tables]


@dataclass(frozen=True)
class _Rebuilt:
    """A constraint or index dropped before loading and re-created after.

    Re-created from the server's own definition (``pg_get_constraintdef`` or
    ``pg_get_indexdef``): foreign keys, and the indexes (plain, or backing a
    PRIMARY KEY / UNIQUE constraint).
    """

    table: str
    name: str
    constraint: str | None  # the constraint to drop and re-add; None for a plain index
    definition: str

    def drop(self) -> sql.Composed:
        if self.constraint:
            return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                _ident(self.table), sql.Identifier(self.constraint)
            )
        schema = self.table.partition(".")[0]
        return sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, self.name))

    def rebuild(self) -> sql.Composed | sql.SQL:
        # Definitions come from pg_get_*def, i.e. from the server itself.
        if self.constraint:
            return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                _ident(self.table), sql.Identifier(self.constraint), sql.SQL(self.definition)
            )
        return sql.SQL(self.definition)


def _foreign_keys(conn: psycopg.Connection[Any], tables: list[str]) -> list[_Rebuilt]:
    """Every FK on the given tables."""
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
    return [_Rebuilt(r[0], r[1], r[1], r[2]) for r in rows]


def _indexes(conn: psycopg.Connection[Any], tables: list[str]) -> list[_Rebuilt]:
    """The indexes of ``tables`` that can be dropped and rebuilt faithfully.

    Left in place: exclusion constraints, replica-identity and clustered
    indexes (their marks would be lost) and indexes of partitions. (A foreign
    key from a table outside the load cannot exist: TRUNCATE refuses it.)
    """
    rows = conn.execute(
        """
        SELECT n.nspname || '.' || t.relname, i.relname, con.conname,
               CASE WHEN con.oid IS NULL THEN pg_get_indexdef(i.oid)
                    ELSE pg_get_constraintdef(con.oid) END
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.contype IN ('p', 'u')
            AND con.conrelid = x.indrelid
        WHERE n.nspname || '.' || t.relname = ANY(%s)
          AND t.relkind = 'r' AND NOT t.relispartition
          AND NOT x.indisreplident AND NOT x.indisclustered AND x.indisvalid
          AND NOT EXISTS (SELECT 1 FROM pg_constraint e
                          WHERE e.conindid = x.indexrelid AND e.contype = 'x')
        ORDER BY 1, 2
        """,
        (tables,),
    ).fetchall()
    return [_Rebuilt(r[0], r[1], r[2], r[3]) for r in rows]


@dataclass(frozen=True)
class _Trigger:
    """A table's own trigger that fires in an ordinary session ('O': origin, 'A': always)."""

    table: str
    name: str
    mode: str

    def disable(self) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
            _ident(self.table), sql.Identifier(self.name)
        )

    def enable(self) -> sql.Composed:
        always = sql.SQL(" ALWAYS" if self.mode == "A" else "")
        return sql.SQL("ALTER TABLE {} ENABLE{} TRIGGER {}").format(
            _ident(self.table), always, sql.Identifier(self.name)
        )


def _triggers(conn: psycopg.Connection[Any], tables: list[str]) -> list[_Trigger]:
    """The enabled user triggers of ``tables`` (not the ones behind foreign keys)."""
    rows = conn.execute(
        """
        SELECT n.nspname || '.' || c.relname, t.tgname, t.tgenabled
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
          AND n.nspname || '.' || c.relname = ANY(%s)
        ORDER BY 1, 2
        """,
        (tables,),
    ).fetchall()
    return [_Trigger(r[0], r[1], str(r[2])) for r in rows]


# Populated materialized views that read the given tables, directly or
# through views and other materialized views; the deepest dependency last.
_MATERIALIZED_VIEWS = """
WITH RECURSIVE reader(oid, depth) AS (
    SELECT r.ev_class, 1
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid = ANY(%s::regclass[]) AND r.ev_class <> d.refobjid
    UNION
    SELECT r.ev_class, reader.depth + 1
    FROM reader
    JOIN pg_depend d ON d.refobjid = reader.oid AND d.refclassid = 'pg_class'::regclass
        AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE r.ev_class <> reader.oid AND reader.depth < 100
)
SELECT format('%%I.%%I', n.nspname, c.relname)
FROM reader JOIN pg_class c ON c.oid = reader.oid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND c.relispopulated
GROUP BY n.nspname, c.relname
ORDER BY max(reader.depth), 1
"""


def _materialized_views(conn: psycopg.Connection[Any], tables: list[str]) -> list[str]:
    """The populated materialized views over ``tables``, in the order to refresh them."""
    rows = conn.execute(_MATERIALIZED_VIEWS, (_regclasses(conn, tables),)).fetchall()
    return [str(r[0]) for r in rows]


# Every sequence a column of the given tables draws from (a default calling
# nextval, serial or not, owned or shared; an identity), with every column
# anywhere that draws from it: the sequence must pass all of their values.
_SEQUENCES = """
WITH draws(seq, rel, attnum) AS (
    SELECT d.refobjid, ad.adrelid, ad.adnum
    FROM pg_attrdef ad
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
        AND d.refclassid = 'pg_class'::regclass
    JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
    UNION
    SELECT d.objid, d.refobjid, d.refobjsubid
    FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype = 'i' AND d.refobjsubid > 0
)
SELECT format('%%I.%%I', sn.nspname, s.relname),
       array_agg(format('%%I.%%I', n.nspname, c.relname) ORDER BY c.relname, a.attname),
       array_agg(a.attname::text ORDER BY c.relname, a.attname)
FROM draws
JOIN pg_class s ON s.oid = draws.seq JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class c ON c.oid = draws.rel JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = draws.rel AND a.attnum = draws.attnum
WHERE draws.seq IN (SELECT seq FROM draws WHERE rel = ANY(%s::regclass[]))
GROUP BY 1
ORDER BY 1
"""


def _reset_sequences(conn: psycopg.Connection[Any], tables: list[str]) -> None:
    """Move every sequence the tables draw from past the highest value it gave any column.

    Else the app's next insert draws a key the load has already used.
    """
    drawn = conn.execute(_SEQUENCES, (_regclasses(conn, tables),)).fetchall()
    for sequence, relations, columns in drawn:
        highest = sql.SQL(", ").join(
            # Names come from the server itself (format %I.%I).
            sql.SQL("(SELECT max({}) FROM {})").format(sql.Identifier(column), sql.SQL(rel))
            for rel, column in zip(relations, columns, strict=True)
        )
        conn.execute(
            sql.SQL("SELECT setval({}, COALESCE(greatest({}), 0) + 1, false)").format(
                sql.Literal(sequence), highest
            )
        )


@dataclass(frozen=True)
class _Cleared:
    """What was set aside to load the tables fast and as given, to put back after."""

    tables: list[str]
    indexes: list[_Rebuilt]
    fks: list[_Rebuilt]
    triggers: list[_Trigger]
    checks: list[_Rebuilt] = field(default_factory=list)
    indexed: set[str] = field(default_factory=set)  # tables whose indexes are already rebuilt

    @classmethod
    def emptying(
        cls,
        conn: psycopg.Connection[Any],
        tables: list[str],
        relaxed: Mapping[str, Iterable[Check]] | None = None,
    ) -> _Cleared:
        """Drop the tables' keys and indexes (and relaxed checks), switch off their triggers,
        and empty them."""
        fks = _foreign_keys(conn, tables)
        for fk in fks:
            conn.execute(fk.drop())
        checks = [
            _Rebuilt(table, check.name, check.name, check.expression)
            for table, found in (relaxed or {}).items()
            for check in found
        ]
        for check in checks:
            conn.execute(check.drop())
        indexes = _indexes(conn, tables)  # after the FKs, which depend on the unique ones
        for index in indexes:
            conn.execute(index.drop())
        triggers = _triggers(conn, tables)  # before TRUNCATE, which fires its own
        for trigger in triggers:
            conn.execute(trigger.disable())
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(_ident(t) for t in tables)
                )
            )
        return cls(tables, indexes, fks, triggers, checks)

    def rebuild_indexes(self, conn: psycopg.Connection[Any], table: str) -> None:
        """Rebuild one loaded table's indexes now, not in ``restore()``."""
        for index in self.indexes:
            if index.table == table:
                conn.execute(index.rebuild())
        self.indexed.add(table)

    def restore(self, conn: psycopg.Connection[Any]) -> None:
        """Rebuild what was dropped, refresh what reads the tables, switch the triggers on."""
        # Unique indexes first: the FKs need them. A re-added check validates every row.
        indexes = [index for index in self.indexes if index.table not in self.indexed]
        for rebuilt in (*indexes, *self.fks, *self.checks):
            conn.execute(rebuilt.rebuild())
        for view in _materialized_views(conn, self.tables):
            # The name comes from the server itself (format %I.%I).
            conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(view)))
        for trigger in self.triggers:
            conn.execute(trigger.enable())


def load(
    conn: psycopg.Connection[Any],
    schema: Schema,
    order: Iterable[str],
    columns_of: Callable[[Table], list[str]],
    chunks: ChunkSource,
    progress: Progress | None = None,
    before_commit: Callable[[psycopg.Connection[Any], Mapping[str, int]], None] | None = None,
    binary: Collection[str] = frozenset(),
    relaxed: Mapping[str, Iterable[Check]] | None = None,
    repair: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> LoadReport:
    """Replace the contents of every table in ``order`` with the given rows.

    Rows come as COPY text, or for the tables named in ``binary`` as binary
    COPY tuples (without the stream's header and trailer, which are added
    here). ``before_commit`` runs inside the transaction after everything is
    loaded, with the rows each table got; raising there rolls the whole load
    back (the anonymiser's copy and leak checks use this). The ``relaxed``
    checks (by table) are dropped while the rows load, and ``repair`` runs
    on the loaded rows before they are re-added, each validating every row.
    """
    tables = list(order)
    report = LoadReport()
    started = time.perf_counter()
    with conn.transaction():
        # The rows arrive as UTF-8 bytes, whatever the target's own encoding.
        conn.execute("SET LOCAL client_encoding TO 'UTF8'")
        cleared = _Cleared.emptying(conn, tables, relaxed)
        with conn.cursor() as cur:
            for name in tables:
                target = schema.table(name)
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in columns_of(target))
                form = sql.SQL(" (FORMAT binary)" if name in binary else "")
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN{}").format(_ident(name), columns, form)
                report.rows[name] = 0
                if progress:
                    progress(name, 0)
                with cur.copy(copy_sql) as copy:
                    if name in binary:
                        copy.write(binary_copy.HEADER)
                    for rows, chunk in chunks(name):
                        copy.write(chunk)
                        report.rows[name] += rows
                        if progress:
                            progress(name, rows)
                    if name in binary:
                        copy.write(binary_copy.TRAILER)
                if repair is None:
                    # Built while the next tables' rows are still being made (an
                    # anonymiser's readers work ahead), not all at the end, alone.
                    # A repair may still rewrite rows: then they wait for it.
                    cleared.rebuild_indexes(conn, name)
        _reset_sequences(conn, tables)
        if repair is not None:
            repair(conn)
        cleared.restore(conn)
        if before_commit is not None:
            before_commit(conn, report.rows)
    report.seconds = time.perf_counter() - started
    return report
