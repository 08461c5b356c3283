"""Anonymised copies: source ``COPY TO`` → transform → target ``COPY FROM``, streaming.

The source is read in one read-only REPEATABLE READ transaction (a
consistent snapshot, safe on a replica). Rows flow in fixed-size batches, so
memory stays flat however large a table is. The target is loaded by
:func:`seeders.loader.load` (atomic; foreign keys validated once).

Leak check: while streaming, the MD5 of every original value of an
identifying column (fake, hash, mask, redact, template, constant, null; six
characters or longer) goes to a scratch table in the target through a
second connection. Before the load commits, every text-like column of the
target is searched for those digests; any hit fails the run and rolls the
load back, so no original value is ever committed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from seeders.graph import load_order
from seeders.introspect import introspect
from seeders.loader import Progress, load
from seeders.rules import Rules, check_rules
from seeders.schema import Category, Schema, Table
from seeders.transform import Keyed, Transform, build, unescape

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
    """How one table's rows are rewritten: column order and per-column transforms."""

    table: Table
    columns: tuple[str, ...]
    transforms: tuple[tuple[int, Transform], ...]  # non-template, by position
    templates: tuple[tuple[int, Transform], ...]
    identifying: tuple[int, ...]  # positions whose originals feed the leak check
    needs_originals: bool  # some transform is keyed by another column's original value

    def rewrite(self, line: str, digests: set[str]) -> str:
        fields = line.split("\t")
        for position in self.identifying:
            original = fields[position]
            if original != "\\N" and len(original) >= MIN_LEAK_LENGTH:
                digests.add(hashlib.md5(unescape(original).encode()).hexdigest())
        if self.transforms or self.templates:
            originals = fields[:]
            by_name = (
                dict(zip(self.columns, originals, strict=True)) if self.needs_originals else {}
            )
            for position, transform in self.transforms:
                fields[position] = transform(originals[position], by_name)
            if self.templates:
                row = dict(zip(self.columns, fields, strict=True))
                for position, transform in self.templates:
                    fields[position] = transform(originals[position], row)
        return "\t".join(fields)


def _pipeline(table: Table, rules: Rules, keyed: Keyed) -> TablePipeline:
    table_rules = rules.for_table(table)
    columns = tuple(c.name for c in table.columns if c.writable)
    transforms: list[tuple[int, Transform]] = []
    templates: list[tuple[int, Transform]] = []
    identifying: list[int] = []
    row_key = table.primary_key[0] if len(table.primary_key) == 1 else None
    needs_originals = False
    for position, name in enumerate(columns):
        column = table.column(name)
        rule = table_rules[name]
        if rule.kind == "date_shift":
            needs_originals = needs_originals or bool(rule.options.get("by", row_key))
        transform = build(column, rule, keyed, table.is_unique(name), row_key)
        if transform is None:
            continue
        (templates if rule.kind == "template" else transforms).append((position, transform))
        if rule.kind in IDENTIFYING:
            identifying.append(position)
    return TablePipeline(
        table, columns, tuple(transforms), tuple(templates), tuple(identifying), needs_originals
    )


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
        keyed = Keyed(salt)
        self.pipelines = {
            t.qualified: _pipeline(t, rules, keyed) for t in self.source_schema.tables
        }
        self.order = load_order(self.source_schema)

    def _stream(
        self, name: str, digests_out: Callable[[set[str]], None]
    ) -> Iterator[tuple[int, bytes]]:
        pipeline = self.pipelines[name]
        query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in pipeline.columns),
            sql.Identifier(pipeline.table.schema, pipeline.table.name),
        )
        batch: list[str] = []
        digests: set[str] = set()
        with self.source.cursor() as cur, cur.copy(query) as copy:
            for data in copy:
                batch.append(pipeline.rewrite(bytes(data).decode().rstrip("\n"), digests))
                if len(batch) >= BATCH_ROWS:
                    yield len(batch), ("\n".join(batch) + "\n").encode()
                    batch = []
                    digests_out(digests)
                    digests = set()
        if batch:
            yield len(batch), ("\n".join(batch) + "\n").encode()
        digests_out(digests)

    def run(self, progress: Progress | None = None) -> AnonymiseReport:
        report = AnonymiseReport()
        leak_table = f"preview_leak_check_{secrets.token_hex(4)}"
        self.scratch.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} (digest text NOT NULL)").format(
                sql.Identifier(leak_table)
            )
        )
        started = time.perf_counter()
        try:
            with ExitStack() as stack:
                scratch_cur = stack.enter_context(self.scratch.cursor())
                leak_copy = stack.enter_context(
                    scratch_cur.copy(
                        sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(leak_table))
                    )
                )

                def send_digests(digests: set[str]) -> None:
                    if digests:
                        leak_copy.write(("\n".join(digests) + "\n").encode())
                        report.digests += len(digests)

                def verify(conn: psycopg.Connection[Any]) -> None:
                    stack.close()  # finish the digest COPY so this transaction can see it
                    report.leak_hits = self._leak_hits(conn, leak_table)
                    if report.leak_hits:
                        raise LeakDetected(report.leak_hits)

                with self.source.transaction():
                    loaded = load(
                        self.target,
                        self.target_schema,
                        self.order.tables,
                        lambda t: list(self.pipelines[t.qualified].columns),
                        lambda name: self._stream(name, send_digests),
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

    def _leak_hits(self, conn: psycopg.Connection[Any], leak_table: str) -> dict[str, int]:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(leak_table)))
        hits: dict[str, int] = {}
        for table in self.target_schema.tables:
            for column in table.columns:
                if column.category not in _SEARCHED and not column.is_array:
                    continue
                row = conn.execute(
                    sql.SQL(
                        "SELECT count(*) FROM {} t WHERE md5(t.{}::text) IN (SELECT digest FROM {})"
                    ).format(
                        sql.Identifier(table.schema, table.name),
                        sql.Identifier(column.name),
                        sql.Identifier(leak_table),
                    )
                ).fetchone()
                if row and row[0]:
                    hits[f"{table.qualified}.{column.name}"] = int(row[0])
        return hits
