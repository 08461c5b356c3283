"""Anonymised copies: source ``COPY TO`` → target ``COPY FROM``, streaming.

The source is read in one read-only REPEATABLE READ transaction (a
consistent snapshot, safe on a replica). Every rule is an SQL expression the
source evaluates while it streams (:mod:`seeders.transform`), so the client
only moves bytes, in batches: memory stays flat however large a table is.
The target is loaded by :func:`seeders.loader.load` (atomic; foreign keys
validated once).

Leak check: for every identifying column (fake, hash, mask, redact,
template, constant, null) the source also streams a keyed 64-bit
fingerprint (``hashtextextended`` under a seed derived from the salt, so the
scratch data says nothing without it) of each original value of six
characters or more into a scratch table in the target. Before the load
commits, every text-like column of the target is searched for those
fingerprints; any hit fails the run and rolls the load back, so no original
value is ever committed. A 64-bit fingerprint can collide by chance with
odds of about n²/2⁶⁵: a false alarm, never a missed leak.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from seeders import subset
from seeders.graph import load_order
from seeders.introspect import introspect
from seeders.loader import Progress, load
from seeders.rules import Rules, check_rules
from seeders.schema import Category, Schema, Table
from seeders.transform import Keyed, Macs, expression

BATCH_ROWS = 5000
MIN_LEAK_LENGTH = 6
IDENTIFYING = frozenset({"fake", "hash", "mask", "redact", "template", "constant", "null"})
_SEARCHED = (Category.TEXT, Category.OTHER, Category.JSON)


class LeakDetected(Exception):
    """Original values of transformed columns were found in the target."""

    def __init__(self, hits: dict[str, int]) -> None:
        self.hits = hits
        listed = ", ".join(f"{column}: {count}" for column, count in sorted(hits.items()))
        super().__init__(
            f"leak check failed, nothing was written: original values found in {listed}. "
            "Give those columns (or the columns they were copied into) a transforming rule."
        )


class SchemaMismatch(ValueError):
    """The target lacks a table or column of the source."""


@dataclass
class AnonymiseReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    digests: int = 0
    leak_hits: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True)
class TablePipeline:
    """The two queries that read one table: anonymised rows, and leak-check digests."""

    table: Table
    columns: tuple[str, ...]
    select: sql.Composed  # COPY (SELECT <expressions> FROM table) TO STDOUT
    digests: sql.Composed | None  # COPY (SELECT fingerprint(original) ...) TO STDOUT


def fingerprint(value: sql.Composable, seed: int) -> sql.Composable:
    """Keyed 64-bit fingerprint of a value's text, identical in source and target."""
    return sql.SQL("hashtextextended(({})::text, {})").format(value, sql.Literal(seed))


def _pipeline(
    table: Table, rules: Rules, keyed: Keyed, seed: int, where: sql.Composable | None = None
) -> TablePipeline:
    table_rules = rules.for_table(table)
    columns = tuple(c.name for c in table.columns if c.writable)
    outputs: dict[str, sql.Composable] = {}
    macs = Macs(keyed)
    templates = [n for n in columns if table_rules[n].kind == "template"]
    for name in (*[n for n in columns if n not in templates], *templates):
        outputs[name] = expression(table, table.column(name), table_rules[name], macs, outputs)
    source = sql.Identifier(table.schema, table.name)
    only = sql.SQL(" WHERE {}").format(where) if where is not None else sql.SQL("")
    select = sql.SQL("COPY (SELECT {} FROM {}{}{}) TO STDOUT").format(
        sql.SQL(", ").join(outputs[n] for n in columns), source, macs.joins(), only
    )
    identifying = [n for n in columns if table_rules[n].kind in IDENTIFYING]
    digests = None
    if identifying:
        parts = [
            sql.SQL("SELECT {f} FROM {t} WHERE length({c}::text) >= {n}{also}").format(
                f=fingerprint(sql.Identifier(n), seed),
                c=sql.Identifier(n),
                t=source,
                n=sql.Literal(MIN_LEAK_LENGTH),
                also=sql.SQL(" AND {}").format(where) if where is not None else sql.SQL(""),
            )
            for n in identifying
        ]
        digests = sql.SQL("COPY ({}) TO STDOUT").format(sql.SQL(" UNION ALL ").join(parts))
    return TablePipeline(table, columns, select, digests)


def check_target(source: Schema, target: Schema) -> None:
    problems = []
    for table in source.tables:
        try:
            found = target.table(table.qualified)
        except KeyError:
            problems.append(f"target has no table {table.qualified}")
            continue
        missing = {c.name for c in table.columns if c.writable} - {c.name for c in found.columns}
        if missing:
            problems.append(f"target table {table.qualified} lacks columns {sorted(missing)}")
    if problems:
        raise SchemaMismatch(
            "the target schema does not match the source (apply the same migrations first): "
            + "; ".join(problems)
        )


class Anonymiser:
    """One anonymised copy from ``source`` to ``target``; checks everything before writing."""

    def __init__(
        self,
        source: psycopg.Connection[Any],
        target: psycopg.Connection[Any],
        scratch: psycopg.Connection[Any],
        rules: Rules,
        salt: bytes,
    ) -> None:
        self.source, self.target, self.scratch = source, target, scratch
        # One consistent snapshot of every table; never a write to the source.
        source.read_only = True
        source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.source_schema = introspect(source)
        self.target_schema = introspect(target)
        check_rules(self.source_schema, rules)
        check_target(self.source_schema, self.target_schema)
        if rules.subset:
            subset.check_roots(self.source_schema, rules.subset)
        keyed = Keyed.from_salt(salt)
        self.rules, self.keyed = rules, keyed
        digest = hashlib.sha256(b"preview-envs leak check\0" + salt).digest()
        self.seed = int.from_bytes(digest[:8], "big", signed=True)
        self.pipelines = {
            t.qualified: _pipeline(t, rules, keyed, self.seed) for t in self.source_schema.tables
        }
        self.order = load_order(self.source_schema)

    def _stream(self, query: sql.Composed) -> Iterator[tuple[int, bytes]]:
        """Rows of one COPY TO, passed through in batches of BATCH_ROWS."""
        batch: list[bytes] = []
        with self.source.cursor() as cur, cur.copy(query) as copy:
            for data in copy:
                batch.append(bytes(data))
                if len(batch) >= BATCH_ROWS:
                    yield len(batch), b"".join(batch)
                    batch = []
        if batch:
            yield len(batch), b"".join(batch)

    def _send_digests(self, leak_table: str) -> int:
        """Stream every table's leak-check digests into the scratch table."""
        sent = 0
        target = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(leak_table))
        with self.scratch.cursor() as cur, cur.copy(target) as into:
            for pipeline in self.pipelines.values():
                if pipeline.digests is None:
                    continue
                for rows, chunk in self._stream(pipeline.digests):
                    into.write(chunk)
                    sent += rows
        return sent

    def run(self, progress: Progress | None = None) -> AnonymiseReport:
        report = AnonymiseReport()
        leak_table = f"preview_leak_check_{secrets.token_hex(4)}"
        self.scratch.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} (digest bigint NOT NULL)").format(
                sql.Identifier(leak_table)
            )
        )
        started = time.perf_counter()
        try:

            def verify(conn: psycopg.Connection[Any]) -> None:
                report.digests = self._send_digests(leak_table)
                report.leak_hits = self._leak_hits(conn, leak_table)
                if report.leak_hits:
                    raise LeakDetected(report.leak_hits)

            with self.source.transaction():
                if self.rules.subset:  # in the same snapshot as the copy itself
                    self._narrow_to_subset()
                loaded = load(
                    self.target,
                    self.target_schema,
                    self.order.tables,
                    lambda t: list(self.pipelines[t.qualified].columns),
                    lambda name: self._stream(self.pipelines[name].select),
                    progress,
                    before_commit=verify,
                )
            report.rows = loaded.rows
        finally:
            self.scratch.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(leak_table))
            )
        report.seconds = time.perf_counter() - started
        return report

    def _narrow_to_subset(self) -> None:
        keys = subset.compute(self.source, self.source_schema, self.rules.subset)
        self.pipelines = {
            t.qualified: _pipeline(
                t, self.rules, self.keyed, self.seed, subset.condition(t, keys[t.qualified])
            )
            for t in self.source_schema.tables
        }

    def _leak_hits(self, conn: psycopg.Connection[Any], leak_table: str) -> dict[str, int]:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(leak_table)))
        hits: dict[str, int] = {}
        for table in self.target_schema.tables:
            for column in table.columns:
                if column.category not in _SEARCHED and not column.is_array:
                    continue
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} t WHERE {} IN (SELECT digest FROM {})").format(
                        sql.Identifier(table.schema, table.name),
                        fingerprint(sql.SQL("t.{}").format(sql.Identifier(column.name)), self.seed),
                        sql.Identifier(leak_table),
                    )
                ).fetchone()
                if row and row[0]:
                    hits[f"{table.qualified}.{column.name}"] = int(row[0])
        return hits
