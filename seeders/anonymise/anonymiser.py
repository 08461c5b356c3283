"""Anonymised copies: source ``COPY TO`` → target ``COPY FROM``, streaming.

The source is read in one read-only REPEATABLE READ transaction (a
consistent snapshot, safe on a replica). Every rule is an SQL expression the
source evaluates while it streams (:mod:`seeders.anonymise.transform`), so the client
only moves bytes, in batches: memory stays flat however large a table is.
The target is loaded by :func:`seeders.copy.loader.load` (atomic; foreign keys
validated once). Given a way to open more source connections, large tables
are read by several connections in the same exported snapshot
(:mod:`seeders.anonymise.readers`), so the transforms use more than one server core.

Leak check: for every identifying column (fake, hash, mask, redact,
template, constant, null) the source also streams a keyed 64-bit
fingerprint (``hashtextextended`` under a seed derived from the salt, so the
scratch data says nothing without it) of each original value of six
characters or more, its letters A-Z lower-cased, into a scratch table in
the target while the load runs (batched per range of heap blocks, in binary
COPY form). Before the load commits, every text-like column of the target
is searched for those fingerprints (one hash semi-join for all tables; its
values' letters lower-cased too, so an upper-cased copy counts); any hit
fails the run and rolls the load back, so no original value is ever
committed. A 64-bit fingerprint
can collide by chance with odds of about n²/2⁶⁵: a false alarm, never a
missed leak. Between databases of different encodings the fingerprint is
taken of the value's UTF-8 bytes, so the same characters match whatever
bytes each server stores them as.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from seeders.anonymise import fakes, subset
from seeders.anonymise.readers import (
    Connect,
    Planned,
    SnapshotReaders,
    heap_blocks,
    tid_range_scans,
)
from seeders.anonymise.rules import Rule, Rules, check_rules, key_column
from seeders.anonymise.session import bounded, canonical
from seeders.anonymise.shapes import Overflow, Shape, of_type, overflows, problems, shapes
from seeders.anonymise.transform import (
    Keyed,
    Macs,
    expression,
    generated_values,
    key_value,
    safe_path,
)
from seeders.copy import binary_copy
from seeders.copy.loader import LoadReport, Progress, load
from seeders.schema.graph import Key, load_order
from seeders.schema.introspect import introspect
from seeders.schema.model import Category, Column, Schema, Table
from seeders.schema.names import own_rows

MIN_LEAK_LENGTH = 6
# Heap blocks whose fingerprints travel in one COPY row (~3 000 rows of a
# typical table; at most 64 * 291 rows: a row stays small however big the table).
DIGEST_BLOCKS = 64
# Scans appended in one leak probe. The fingerprints are hashed once per
# probe (~0.1 s a million of them), so one probe should hold every column of
# any real schema; the cap bounds only the query's size.
PROBES_PER_QUERY = 5000
# A UNION ALL is parsed as a chain as deep as it is long (a chain of ~10 000
# reaches the default max_stack_depth): scans are appended in parenthesised
# groups of at most this many, groups of groups beyond, which the planner
# flattens back into one Append.
APPEND_GROUP = 64
IDENTIFYING = frozenset({"fake", "hash", "mask", "redact", "template", "constant", "null"})
_SEARCHED = (Category.TEXT, Category.OTHER, Category.JSON)


class LeakDetected(Exception):
    """Original values of transformed columns were found in the target."""

    def __init__(self, hits: dict[str, int]) -> None:
        self.hits = hits
        listed = ", ".join(f"{column}: {count}" for column, count in sorted(hits.items()))
        fix = (
            "Give those columns (or the columns they were copied into) a transforming rule;"
            " a kept column of public reference data whose values merely equal someone's (a"
            ' country list holds "Jordan") takes {keep: {leak_check: false}}.'
        )
        super().__init__(
            f"leak check failed, nothing was written: original values found in {listed}. {fix}"
        )
        self.public = (
            "leak check failed, nothing was written: original values found in "
            f"{', '.join(sorted(hits))}. {fix}"
        )


class SchemaMismatch(ValueError):
    """The target lacks a table or column of the source."""


@dataclass(frozen=True)
class Refused:
    """Source rows of one column the target cannot take: where, how many, why and the fix."""

    where: str  # table.column
    rows: int
    reason: str  # what those rows' values are ("longer than ..."), and the fix

    def __str__(self) -> str:
        return f"{self.where}: {'1 row' if self.rows == 1 else f'{self.rows} rows'} {self.reason}"


class TargetTooNarrow(SchemaMismatch):
    """Source rows hold values the target's narrower columns cannot take as they are.

    ``public`` names the columns and the fix with no count: the target is the
    pull request's, and how many rows exceed a width it chose is read from
    the source.
    """

    def __init__(self, found: list[Refused], migration: bool) -> None:
        self.found = found
        note = " The migration would fail on the same rows in production." if migration else ""
        head = "the source holds values the target's columns cannot take, nothing was written: "
        super().__init__(head + "; ".join(str(f) for f in found) + "." + note)
        self.public = head + "; ".join(f"{f.where}: rows {f.reason}" for f in found) + "." + note


class IncompleteCopy(Exception):
    """A table arrived with other than the number of rows the source's snapshot holds."""

    def __init__(self, tables: dict[str, tuple[int, int]]) -> None:
        self.tables = tables
        listed = ", ".join(f"{t}: {got} of {n}" for t, (got, n) in sorted(tables.items()))
        head = "copy check failed, nothing was written: tables arrived short of the source's rows"
        fix = "The transforms lost rows: please report this with those tables' rules."
        super().__init__(f"{head} ({listed}). {fix}")
        self.public = f"{head} ({', '.join(sorted(tables))}). {fix}"


class SourceConflict(Exception):
    """The source is a hot standby, and it cancelled the copy to go on replaying.

    A standby replaying the primary's VACUUM must remove rows that the
    copy's snapshot still reads; past ``max_standby_streaming_delay`` it
    cancels the copy instead (SQLSTATE 40001, which a read-only snapshot
    meets nowhere else). The usual fix is one setting away, so say which.
    """

    def __init__(self, error: psycopg.Error) -> None:
        advice = (
            "Nothing was written. Replaying the primary's changes had to remove rows this "
            "copy's snapshot still reads. Set hot_standby_feedback = on on the standby (the "
            "primary then keeps those rows until the copy ends), or raise the standby's "
            "max_standby_streaming_delay above the copy's duration, or copy from a snapshot "
            "restored as a server of its own; then run again."
        )
        super().__init__(f"the source is a hot standby and cancelled the copy: {error}\n{advice}")
        self.public = f"the source is a hot standby and cancelled the copy.\n{advice}"


@dataclass
class AnonymiseReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    digests: int = 0
    leak_hits: dict[str, int] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)  # tables the target kept as they were

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True)
class TablePipeline:
    """The two queries that read one table: anonymised rows, and leak-check digests."""

    table: Table
    columns: tuple[str, ...]
    outputs: sql.Composable  # the anonymised values, in ``columns`` order
    joins: sql.Composable  # FROM-clause additions the outputs need (MACs, pools)
    where: sql.Composable | None  # the subset's condition, if any
    # Where the originals the leak check fingerprints are read: identifying
    # columns, and identifying fields of composites (``(home).street``).
    identifying: tuple[sql.Composable, ...]
    fingerprint: Fingerprint
    binary: bool = False  # rows travel in binary COPY form (see binary_form)

    @property
    def source(self) -> sql.Identifier:
        return sql.Identifier(self.table.schema, self.table.name)

    @property
    def rows(self) -> sql.Composable:
        return own_rows(self.table)

    def _where(self, part: sql.Composable | None) -> sql.Composable:
        conditions = [c for c in (self.where, part) if c is not None]
        if not conditions:
            return sql.SQL("")
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(
            sql.SQL("({})").format(c) for c in conditions
        )

    def where_clause(self) -> sql.Composable:
        """The subset's ``WHERE`` clause, or nothing."""
        return self._where(None)

    def count(self) -> sql.Composed:
        """How many rows the copy of this table reads."""
        return sql.SQL("SELECT count(*) FROM {}{}").format(self.rows, self._where(None))

    def select(self, part: sql.Composable | None = None) -> sql.Composed:
        """``COPY (SELECT <anonymised> FROM table ...) TO STDOUT``, of one block range if given."""
        return sql.SQL("COPY (SELECT {} FROM {}{}{}) TO STDOUT{}").format(
            self.outputs,
            self.rows,
            self.joins,
            self._where(part),
            sql.SQL(" (FORMAT binary)" if self.binary else ""),
        )

    def digests(self, blocks: int | None = None) -> sql.Composed:
        """The fingerprints of every source row's identifying originals, as binary COPY.

        Each fingerprint leaves the source already framed as a one-column
        binary COPY tuple of the leak table, so the client forwards the bytes
        as they come (:func:`seeders.copy.binary_copy.fields`) and the target parses no text.
        Given the heap's size in blocks (and a server with TID range scans),
        one COPY row carries every fingerprint of DIGEST_BLOCKS heap blocks:
        the client then handles a few hundred rows, not one per source row.
        """
        fingerprints = sql.SQL(" || ").join(
            sql.SQL(
                "coalesce(CASE WHEN length({c}::text) >= {n} THEN {t} || int8send({f}) END,"
                " ''::bytea)"
            ).format(
                c=value,
                n=sql.Literal(MIN_LEAK_LENGTH),
                t=sql.Literal(_FINGERPRINT_TUPLE),
                f=self.fingerprint.of(value),
            )
            for value in self.identifying
        )
        # OFFSET 0 keeps the planner from evaluating the fingerprints twice
        # (once for the filter, once for the output).
        if blocks is None:
            return sql.SQL(
                "COPY (SELECT d FROM (SELECT {} AS d FROM {}{} OFFSET 0) AS f"
                " WHERE d <> ''::bytea) TO STDOUT (FORMAT binary)"
            ).format(fingerprints, self.rows, self._where(None))
        step = sql.Literal(DIGEST_BLOCKS)
        ctid = sql.SQL("{}.ctid").format(self.source)
        # The last range is open-ended, as in readers.block_ranges. The block
        # counter is named so that no column of the table can stand in for it.
        blocks_range = sql.SQL(
            "{c} >= format('(%s,0)', __pe_b)::tid AND {c} < CASE WHEN __pe_b + {s} >= {n}"
            " THEN '(4294967295,0)'::tid ELSE format('(%s,0)', __pe_b + {s})::tid END"
        ).format(c=ctid, s=step, n=sql.Literal(blocks))
        return sql.SQL(
            "COPY (SELECT g.a FROM generate_series(0, {last}, {s}) AS __pe_b CROSS JOIN LATERAL"
            " (SELECT string_agg(f.d, ''::bytea) AS a FROM"
            " (SELECT {fps} AS d FROM {t}{w} OFFSET 0) AS f"
            " WHERE f.d <> ''::bytea OFFSET 0) AS g WHERE g.a IS NOT NULL)"
            " TO STDOUT (FORMAT binary)"
        ).format(
            last=sql.Literal(max(blocks - 1, 0)),
            s=step,
            fps=fingerprints,
            t=self.rows,
            w=self._where(blocks_range),
        )


# The prefix of a one-column binary COPY tuple holding 8 bytes (field count 1, length 8).
_FINGERPRINT_TUPLE = b"\x00\x01\x00\x00\x00\x08"


@dataclass(frozen=True)
class Fingerprint:
    """Keyed 64-bit fingerprints of values' text, identical in source and target.

    ``portable`` when the two servers store text in different encodings:
    the fingerprint is then of the value's UTF-8 bytes (``textsend`` in the
    UTF-8 sessions both sides use, hex-encoded so that either server can
    hash it as text); otherwise of the text itself, which costs less.
    """

    seed: int
    portable: bool = False

    def of(self, value: sql.Composable) -> sql.Composable:
        # Letters A-Z folded (the "C" collation's lower() touches nothing else, at
        # ~40 ns a value): an upper-cased copy of an original, as ASP.NET Identity's
        # NormalizedEmail keeps, and a search vector's lower-cased lexeme of a name
        # are as present as the original itself.
        text: sql.Composable = sql.SQL('lower(({})::text COLLATE "C")').format(value)
        if self.portable:
            text = sql.SQL("encode(textsend({}), 'hex')").format(text)
        return sql.SQL("hashtextextended({}, {})").format(text, sql.Literal(self.seed))


def _server_encoding(conn: psycopg.Connection[Any]) -> str:
    """How the server stores text (reported at connection time; no query)."""
    return conn.info.parameter_status("server_encoding") or ""


def _recovery_conflict(error: psycopg.Error) -> bool:
    """Whether a standby ended the copy to go on replaying.

    By SQLSTATE, or by the message when the session ended before its error
    could be parsed (libpq then keeps only the text).
    """
    return error.sqlstate == "40001" or "conflict with recovery" in str(error)


def _in_recovery(conn: psycopg.Connection[Any]) -> bool:
    with conn.transaction():
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def _creation_schema(conn: psycopg.Connection[Any]) -> str:
    """Where an unqualified CREATE TABLE would put a table under the role's own search path.

    Not under the session's: that is pinned to ``pg_catalog`` once a run
    has used the connection (seeders.anonymise.session).
    """
    with conn.transaction():
        conn.execute("SET LOCAL search_path TO DEFAULT")
        row = conn.execute("SELECT current_schema()").fetchone()
    if not row or row[0] is None:
        raise SchemaMismatch(
            "the target connection's search_path names no existing schema, so the leak check"
            " has nowhere to create its scratch table; set search_path for this role"
        )
    return str(row[0])


def _canonical(connect: Connect) -> Connect:
    return lambda: canonical(connect())


def binary_form(source: Table, target: Table) -> bool:
    """Whether this table's rows can travel in binary COPY form.

    Binary rows skip printing every value as text at the source and parsing
    it again at the target (a timestamp or a numeric costs more as text than
    the copy of its bytes). They need every column to be of the same type on
    both sides, and of a type whose binary form means the same in any
    database (:attr:`Column.binary_portable`: not an extension's type, a
    composite, or an array of either or of enums); any other table travels
    as text.
    """
    targets = {c.name: c for c in target.columns}
    return all(
        column.binary_portable
        and column.name in targets
        and targets[column.name].type_name == column.type_name
        and targets[column.name].binary_portable
        for column in source.columns
        if column.writable
    )


def _pipeline(
    table: Table,
    rules: Rules,
    keyed: Keyed,
    fingerprint: Fingerprint,
    shaped: Mapping[Key, Shape],
    where: sql.Composable | None = None,
    binary: bool = False,
) -> TablePipeline:
    table_rules = rules.for_table(table)
    columns = tuple(c.name for c in table.columns if c.writable)
    outputs: dict[str, sql.Composable] = {}
    macs = Macs(keyed)
    templates = [n for n in columns if table_rules[n].kind == "template"]
    for name in (*[n for n in columns if n not in templates], *templates):
        shape = shaped[(table.qualified, name)]
        outputs[name] = expression(
            table, table.column(name), table_rules[name], macs, outputs, shape
        )
    selected = [outputs[n] for n in columns]
    if binary:
        # A binary value must be of the column's own type exactly (a shifted
        # date is a timestamp until cast back); the typmod is the target's
        # to apply, as it is to text (a cast to varchar(n) would truncate).
        selected = [
            value
            if table_rules[n].kind == "keep"
            else sql.SQL("CAST(({}) AS {})").format(value, sql.SQL(table.column(n).type_ref))
            for n, value in zip(columns, selected, strict=True)
        ]
    return TablePipeline(
        table=table,
        columns=columns,
        outputs=sql.SQL(", ").join(selected),
        joins=macs.joins(),
        where=where,
        identifying=tuple(
            value
            for n in columns
            for value in _identifying(table.column(n), table_rules[n], sql.Identifier(n))
        ),
        fingerprint=fingerprint,
        binary=binary,
    )


def _generated(
    path: str, column: Column, rule: Rule, shape: Shape
) -> Iterator[tuple[str, tuple[str, ...], Column]]:
    """(column or field path, the values its rule writes from no original, that column or field).

    A field's path is its column's and its own names: ``home.street``.
    """
    if rule.kind == "keys":  # a key's path is its column's and its own: doc.address.city
        for key, inner in rule.options["keys"].items():
            values = generated_values(inner, of_type(key_column(key)))
            if values:
                yield f"{path}.{key}", values, column
        return
    if rule.kind != "fields":
        values = generated_values(rule, shape)
        if values:
            yield path, values, column
        return
    for member in column.fields:
        yield from _generated(
            f"{path}.{member.name}", member, rule.options["fields"][member.name], of_type(member)
        )


def _identifying(column: Column, rule: Rule, value: sql.Composable) -> list[sql.Composable]:
    """Where the column's originals are read for the leak check: itself, its fields' or keys'."""
    if rule.kind == "keys":
        keys: Mapping[str, Rule] = rule.options["keys"]
        return [key_value(value, k) for k, inner in keys.items() if inner.kind in IDENTIFYING]
    if rule.kind != "fields":
        return [value] if rule.kind in IDENTIFYING else []
    return [
        read
        for member in column.fields
        for read in _identifying(
            member,
            rule.options["fields"][member.name],
            sql.SQL("({}).{}").format(value, sql.Identifier(member.name)),
        )
    ]


def check_target(source: Schema, target: Schema) -> None:
    """Refuse, before anything is written, a target that cannot take the source's rows.

    A column only the target has (the pull request's migration added it)
    gets its default, or NULL; one that is NOT NULL without a default would
    fail the load on its first row.
    """
    problems = []
    for table in source.tables:
        try:
            found = target.table(table.qualified)
        except KeyError:
            problems.append(f"target has no table {table.qualified} (apply the same migrations)")
            continue
        names = {c.name for c in table.columns}
        missing = {c.name for c in table.columns if c.writable} - {c.name for c in found.columns}
        if missing:
            problems.append(
                f"target table {table.qualified} lacks columns {sorted(missing)}"
                " (apply the same migrations)"
            )
        required = [
            c.name
            for c in found.columns
            if c.name not in names
            and c.writable
            and not (c.nullable or c.has_default or c.identity)
        ]
        if required:
            problems.append(
                f"target columns {sorted(required)} of {table.qualified} are NOT NULL without a"
                " default and the source has no such columns, so every copied row would break"
                " the constraint: give them a DEFAULT in the migration that adds them"
            )
    if problems:
        raise SchemaMismatch("the target schema does not match the source: " + "; ".join(problems))


class Anonymiser:
    """One anonymised copy from ``source`` to ``target``; checks everything before writing.

    ``connect_source`` opens another connection to the source; with it, up
    to ``jobs`` connections read large tables in parallel and the leak-check
    digests stream while the load runs. Without it, ``source`` reads alone.
    """

    def __init__(
        self,
        source: psycopg.Connection[Any],
        target: psycopg.Connection[Any],
        scratch: psycopg.Connection[Any],
        rules: Rules,
        salt: bytes,
        connect_source: Connect | None = None,
        jobs: int = 2,
        target_timeout_s: float | None = None,
    ) -> None:
        """``target_timeout_s`` bounds each statement on the target (``session.bounded``)."""
        self.source, self.target, self.scratch = source, target, scratch
        # Every connection writes and reads values' text the same way
        # (seeders.anonymise.session): rows leave the source as UTF-8 (the loader reads
        # them as UTF-8 into any target encoding), the keyed functions read a
        # value's UTF-8 bytes (textsend), and a date is ISO on both sides.
        self.leak_schema = _creation_schema(scratch)
        for conn in (source, target, scratch):
            canonical(conn)
        for conn in (target, scratch):
            bounded(conn, target_timeout_s)
        if connect_source is not None:
            connect_source = _canonical(connect_source)
        # One consistent snapshot of every table; never a write to the source.
        source.read_only = True
        source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.standby = _in_recovery(source)
        shared = connect_source is not None and jobs > 1 and SnapshotReaders.supported(source)
        self.connect_source, self.jobs = (connect_source, jobs) if shared else (None, 1)
        self.source_schema = introspect(source)
        self.target_schema = introspect(target)
        check_rules(self.source_schema, rules)
        # What is copied: every table but the skipped ones, which the load
        # empties, and the left ones, which keep the target's rows.
        self.copied_schema = Schema(
            tuple(t for t in self.source_schema.tables if not (rules.skips(t) or rules.leaves(t)))
        )
        self.skipped = [t.qualified for t in self.source_schema.tables if rules.skips(t)]
        self.left = [t.qualified for t in self.target_schema.tables if rules.leaves(t)]
        check_target(self.copied_schema, self.target_schema)
        if rules.subset:
            subset.check_roots(self.copied_schema, rules.subset)
        # What each column's outputs must fit: its target's and its key family's limits.
        self.shapes = fakes.fitted(
            target, self.copied_schema, self.target_schema, rules,
            shapes(self.copied_schema, self.target_schema), source,
        )  # fmt: skip
        narrow = problems(self.copied_schema, rules, self.shapes)
        if narrow:
            raise SchemaMismatch("the target cannot take these rules: " + "; ".join(narrow))
        self.overflows = overflows(self.copied_schema, self.target_schema, rules, self.shapes)
        keyed = Keyed.from_salt(salt)
        self.rules, self.keyed = rules, keyed
        digest = hashlib.sha256(b"preview-envs leak check\0" + salt).digest()
        self.fingerprint = Fingerprint(
            int.from_bytes(digest[:8], "big", signed=True),
            portable=_server_encoding(source) != _server_encoding(target),
        )
        self.binary = {
            t.qualified: binary_form(t, self.target_schema.table(t.qualified))
            for t in self.copied_schema.tables
        }
        self.pipelines = {
            t.qualified: _pipeline(
                t, rules, keyed, self.fingerprint, self.shapes, binary=self.binary[t.qualified]
            )
            for t in self.copied_schema.tables
        }
        # The skipped tables, where the target has them, are loaded empty.
        known = {t.qualified for t in self.target_schema.tables}
        self.order = [
            name
            for name in load_order(self.source_schema).tables
            if name in self.pipelines or (name in known and name not in self.left)
        ]

    def explained(self, error: psycopg.Error) -> str | None:
        """What a broken check or foreign key says of the rules, and the way out; else None.

        Names only: tables, columns, constraints, rules. The server's own
        detail (``Key (email)=(...)``, ``Failing row contains ...``) holds
        row values, so it is for the caller's log, not for this text.
        """
        diag = error.diag
        try:
            table = self.target_schema.table(f"{diag.schema_name}.{diag.table_name}")
        except KeyError:
            return None
        if isinstance(error, psycopg.errors.CheckViolation):
            return self._refused_by(table, diag.constraint_name)
        if isinstance(error, psycopg.errors.ForeignKeyViolation):
            return self._unmatched_in_left(table, diag.constraint_name)
        if isinstance(error, psycopg.errors.UniqueViolation):
            return self._repeated_under(table, diag.constraint_name)
        return None

    def _repeated_under(self, table: Table, index: str | None) -> str | None:
        """Which rules gave two rows one value under a unique index the rebuild refused.

        Rules keep distinct values distinct; what repeats is a value the
        source repeats where a partial index does not look (GoTrue indexes
        tokens only where they are not all digits), and that a rule moved
        into its sight (a pseudonym of ``123456`` is no longer digits).
        """
        with self.target.transaction():
            found = self.target.execute(
                "SELECT pg_get_indexdef(i.indexrelid), ARRAY(SELECT a.attname FROM pg_attribute a"
                " WHERE a.attrelid = i.indrelid AND a.attnum > 0 AND (a.attnum = ANY (i.indkey)"
                " OR a.attnum IN (SELECT d.refobjsubid FROM pg_depend d"
                " WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid)))"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = %s",
                (table.schema, index),
            ).fetchone()
        if found is None:
            return None
        definition, columns = found
        changed = self._changing(table, columns)
        if not changed:
            return None
        why = (
            "the source repeats values only where the index's condition leaves them out, and"
            " the rule's values no longer are; keep such a column, or give it a rule whose"
            " values keep to the condition"
            if " WHERE " in definition
            else "give it a rule that keeps distinct values distinct (hash, fake)"
        )
        return (
            f"{'; '.join(changed)} gives two rows one value under unique index {index}"
            f" ({definition}): {why}; nothing was written"
        )

    def _changing(self, table: Table, columns: Iterable[str]) -> list[str]:
        """The rules of ``columns`` that change their values, named: ``t.email: rule 'mask'``."""
        ruled = self.rules.for_table(table)
        return [
            f"{table.qualified}.{c}: rule '{ruled[c].kind}'"
            for c in columns
            if c in ruled and ruled[c].kind != "keep"
        ]

    def _refused_by(self, table: Table, constraint: str | None) -> str | None:
        """Which rules gave the values a target's check refused.

        A transformed column's rule, where the check reads one; else the
        check is one the pull request's migration added over kept columns,
        and the source's rows break it as they would in production. The
        check was evaluated by the target on the rows as the rules wrote
        them, never on the source.
        """
        check = next((c for c in table.checks if c.name == constraint), None)
        if check is None:
            return None
        changed = self._changing(table, check.columns)
        if not changed:
            try:
                held = self.source_schema.table(table.qualified).checks
            except KeyError:
                held = ()
            if any(c.condition == check.condition and c.validated for c in held):
                return None  # the source's own check: its rows pass it; not the rules' doing
            columns = " or ".join(check.columns) or "its columns"
            fix = (
                "those rows need fixing in production before the migration runs"
                if check.validated  # NOT VALID spares the rows a table has, not those a copy writes
                else "a copy writes every row anew, so each is checked: fix those rows"
            )
            return (
                f"{table.qualified}: kept rows break the target's check {check.name}"
                f" ({check.expression}): {fix}, or give {columns} a rule whose values pass;"
                " nothing was written"
            )
        ruled = self.rules.for_table(table)
        unique = any(table.is_unique(c) for c in check.columns if c in ruled)
        way = (
            # A constant repeats; a fake is tagged to stay distinct, unless its
            # pattern left room for the table's rows (seeders.anonymise.fakes).
            "a template over a unique column that passes, e.g. {template: '+1555{id}'}, or keep"
            if unique
            else "a fake of the right kind, a constant, keep"
        )
        return (
            f"{'; '.join(changed)} gives values its check {check.name} ({check.expression})"
            f" refuses; give it a rule whose values pass ({way}), or relax the check; nothing"
            " was written"
        )

    def _unmatched_in_left(self, table: Table, constraint: str | None) -> str | None:
        """A copied key into a table that kept the target's rows, missing there."""
        fk = next((f for f in table.foreign_keys if f.name == constraint), None)
        if fk is None or fk.ref_table not in self.left:
            return None
        return (
            f"{table.qualified} ({', '.join(fk.columns)}) references {fk.ref_table}, which keeps"
            " the target's rows, and the source's rows point at keys it lacks; load those rows"
            f" into the target's {fk.ref_table}, narrow the copy with a subset, or copy"
            f" {fk.ref_table} too (give it rules); nothing was written"
        )

    def run(self, progress: Progress | None = None) -> AnonymiseReport:
        try:
            return self._run(progress)
        except psycopg.Error as exc:
            if self.standby and _recovery_conflict(exc):
                raise SourceConflict(exc) from exc
            raise

    def _run(self, progress: Progress | None) -> AnonymiseReport:
        report = AnonymiseReport(left=list(self.left))
        leak = _LeakTable(
            self.scratch, self.leak_schema, any(p.identifying for p in self.pipelines.values())
        )
        started = time.perf_counter()
        loaded: LoadReport | None = None
        try:
            with self.source.transaction():
                loaded = self._copy(report, leak, progress)
        except psycopg.Error:
            if loaded is None:
                raise
            # Everything was read in one snapshot, checked and committed; only
            # ending the source's read-only transaction failed (a standby ends
            # a session idle in one when it conflicts with replay). Nothing to
            # undo, and nothing the copy depended on.
        finally:
            leak.drop()
        report.rows = loaded.rows
        report.seconds = time.perf_counter() - started
        return report

    def _copy(
        self, report: AnonymiseReport, leak: _LeakTable, progress: Progress | None
    ) -> LoadReport:
        """The copy, in the source's snapshot transaction; the leak check runs before commit."""
        readers = SnapshotReaders(self.source, self.connect_source, self.jobs)
        try:
            if self.rules.subset:  # in the same snapshot as the copy itself
                self._narrow_to_subset()
            self._check_fit()
            generated = self._generated_fingerprints()
            readers.plan(  # the readers start on the transforms while the target is emptied
                [
                    Planned(name, self.pipelines[name].source, self.pipelines[name].select)
                    for name in self.order
                    if name in self.pipelines
                ],
                started=(lambda name: progress(name, 0)) if progress else None,
            )
            sender = _DigestSender(leak, list(self.pipelines.values()), readers)

            def rows(name: str) -> Iterable[tuple[int, bytes]]:
                if name not in self.pipelines:  # skipped
                    return ()
                return readers.read(name)

            def verify(conn: psycopg.Connection[Any], copied: Mapping[str, int]) -> None:
                report.digests = sender.finish()
                lost = {t: (copied[t], n) for t, n in sender.rows.items() if copied[t] != n}
                if lost:
                    raise IncompleteCopy(lost)
                written = Schema(
                    tuple(t for t in self.target_schema.tables if t.qualified not in self.left)
                )  # what the target kept was never the copy's to check
                unsearched = {
                    (t.qualified, name)
                    for t in self.copied_schema.tables
                    for name, rule in self.rules.for_table(t).items()
                    if not rule.searched
                }
                report.leak_hits = leak.hits(
                    conn, written, self.fingerprint, generated, frozenset(unsearched)
                )
                if report.leak_hits:
                    raise LeakDetected(report.leak_hits)

            try:
                return load(
                    self.target,
                    self.target_schema,
                    self.order,
                    self._columns,
                    rows,
                    progress,
                    before_commit=verify,
                    binary=frozenset(t for t, b in self.binary.items() if b),
                )
            finally:
                sender.abandon()
        finally:
            readers.close()

    def _columns(self, table: Table) -> list[str]:
        pipeline = self.pipelines.get(table.qualified)
        if pipeline is None:  # skipped: no rows, any of its columns will do
            return [c.name for c in table.columns if c.writable][:1]
        return list(pipeline.columns)

    def _generated_fingerprints(self) -> dict[str, dict[str, list[int]]]:
        """Fingerprints of the values each column's rule writes that are not originals.

        Taken on the source, which already holds every such value in its
        transforms (so they are in its encoding, and in the target's when the
        fingerprints are plain).
        """
        found: dict[str, dict[str, list[int]]] = {}
        # A provider's pool is the same in every table: fingerprinted once a run.
        taken: dict[tuple[tuple[str, ...], bool], list[int]] = {}
        for table in self.copied_schema.tables:
            table_rules = self.rules.for_table(table)
            for column in table.columns:
                if not column.writable:
                    continue
                shape = self.shapes[(table.qualified, column.name)]
                # A character(n) column reads back without its trailing spaces: a fake
                # cut to fit ("Miss Angela Swanson DDS" → "Miss Angela Swanson ") is
                # searched for as the target will read it.
                target = self.target_schema.table(table.qualified).column(column.name)
                for path, values, written in _generated(
                    column.name, column, table_rules[column.name], shape
                ):
                    read = target if written is column else written
                    trimmed = read.base_type == "bpchar" and not read.is_array
                    if (values, trimmed) not in taken:
                        value = sql.SQL("rtrim(v, ' ')" if trimmed else "v")
                        rows = self.source.execute(
                            sql.SQL("SELECT {} FROM unnest(%s::text[]) AS g(v)").format(
                                self.fingerprint.of(value)
                            ),
                            (list(values),),
                        ).fetchall()
                        taken[(values, trimmed)] = [int(r[0]) for r in rows]
                    found.setdefault(table.qualified, {})[path] = taken[(values, trimmed)]
            # A generated column is computed from the row's rewritten values (Supabase's
            # identities.email from identity_data's): what a rule wrote there from its pool
            # is no one's in it either.
            pooled = sorted({f for fps in found.get(table.qualified, {}).values() for f in fps})
            for column in table.columns if pooled else ():
                if column.generated:
                    found[table.qualified][column.name] = pooled
        return found

    def _check_fit(self) -> None:
        """Count, in the copy's snapshot, the rows the target could not take; refuse any.

        Only where the target (or a key family) is narrower than the source
        for values copied as they are (:func:`seeders.anonymise.shapes.overflows`):
        one scan of each such table, none at all otherwise. The conditions
        are the seeder's own SQL; the target's checks are the target's to
        evaluate, as the rows load (:meth:`explained` names the rule).
        """
        by_table: dict[str, list[Overflow]] = {}
        for overflow in self.overflows:
            by_table.setdefault(overflow.table.qualified, []).append(overflow)
        found: list[Refused] = []
        migration = False
        for name, listed in by_table.items():
            for check, count in zip(listed, self._counts(name, listed), strict=True):
                if count:
                    found.append(Refused(f"{name}.{check.column}", count, check.reason))
                    migration = migration or check.migration
        if found:
            raise TargetTooNarrow(found, migration)

    def _counts(self, name: str, overflows: list[Overflow]) -> tuple[int, ...]:
        """How many rows of the copy meet each overflow's condition (one scan)."""
        if not overflows:
            return ()
        pipeline = self.pipelines[name]
        counts = sql.SQL(", ").join(
            sql.SQL("count(*) FILTER (WHERE {})").format(c.condition) for c in overflows
        )
        query = sql.SQL("SELECT {} FROM {}{}").format(
            counts, pipeline.rows, pipeline.where_clause()
        )
        return tuple(self.source.execute(query).fetchone() or ())

    def _narrow_to_subset(self) -> None:
        keys = subset.compute(self.source, self.copied_schema, self.rules.subset)
        self.pipelines = {
            t.qualified: _pipeline(
                t,
                self.rules,
                self.keyed,
                self.fingerprint,
                self.shapes,
                subset.condition(t, keys[t.qualified]),
                binary=self.binary[t.qualified],
            )
            for t in self.copied_schema.tables
        }


# Every node of a JSON document at any depth, the whole document too. Its scalar
# leaves and its objects are picked out by jsonb_typeof() in SQL: a jsonpath filter
# (`? (@.type() == "string")`) costs four times the walk itself (150 000 small
# documents: leaves 127 ms against 327 ms, objects' keys 214 ms against 377 ms).
_JSON_NODES = "strict $.**"


def _unless_generated(
    value: sql.Composable, fingerprint: Fingerprint, generated: list[int]
) -> sql.Composable:
    """A WHERE clause leaving out the values with a ``generated`` fingerprint, or nothing."""
    if not generated:
        return sql.SQL("")
    array = sql.Literal("{" + ",".join(map(str, sorted(set(generated)))) + "}")
    return sql.SQL(" WHERE {} <> ALL ({}::bigint[])").format(fingerprint.of(value), array)


def _searched_values(
    table: sql.Identifier,
    column: Column,
    fingerprint: Fingerprint,
    generated: Mapping[str, list[int]],
) -> list[tuple[sql.Composable, sql.Composable]]:
    """What the leak check compares with the originals: (value, what follows FROM table).

    The whole value, and for an array each element, for a JSON document each
    string and number in it and each key, for a composite each text field,
    for a search vector each lexeme, for an ``hstore`` each key and value:
    an original e-mail kept in a ``cc text[]``, deep in a ``payload jsonb``,
    as the ``email`` of a ``contact`` or in a trigger's ``tsvector`` is as
    present as one in a text column (a lexeme is as the text search
    configuration wrote it: lower-cased, perhaps stemmed). (A ``json``
    column is read as ``jsonb``; substrings of longer text are not
    searched.) Whole values (and fields) with a ``generated`` fingerprint,
    by column or field path (``home.street``), are left out: the rule of
    that column or field wrote them, from a pool, not from an original. A
    constant array makes ``<> ALL`` one hash probe per value (PostgreSQL
    ≥ 15; a scan of the array before).
    """
    name = sql.Identifier(column.name)
    whole = _unless_generated(name, fingerprint, generated.get(column.name, []))
    values: list[tuple[sql.Composable, sql.Composable]] = [(name, whole)]
    if column.is_array:
        # A composite element is kept whole (unnest in FROM would spread its fields).
        unnest = "(SELECT unnest({}.{}) AS e)" if column.fields else "unnest({}.{})"
        joined = sql.SQL(" CROSS JOIN LATERAL " + unnest + " AS e(e)").format(table, name)
        values.append((sql.SQL("e.e"), joined))
    if column.is_array and column.fields:  # (no field rules in arrays)
        values += [(part, values[-1][1]) for _, part in _text_fields(sql.SQL("e.e"), column)]
    elif column.fields:
        values += [
            (part, _unless_generated(part, fingerprint, generated.get(path, [])))
            for path, part in _text_fields(
                sql.SQL("{}.{}").format(table, name), column, column.name
            )
        ]
    elif column.base_type == "tsvector":  # each lexeme: a kept search vector of an e-mail
        lexemes = " CROSS JOIN LATERAL unnest({}.{}) AS l(lexeme, positions, weights)"
        values.append((sql.SQL("l.lexeme"), sql.SQL(lexemes).format(table, name)))
    elif column.base_type == "hstore":  # each key and value (contrib's functions, its schema)
        schema = (column.base_ref or column.type_ref).rsplit(".", 1)[0]
        pairs = " CROSS JOIN LATERAL " + schema + ".each({}.{}) AS h(key, value)"
        joined = sql.SQL(pairs).format(table, name)
        values += [(sql.SQL("h.key"), joined), (sql.SQL("h.value"), joined)]
    elif column.category is Category.JSON:  # its leaves, and its keys: {"alice@…": "admin"}
        # A key a rule faked from a pool is searched on its own, less the pool's values
        # (no one's, as a column's are), and the document's other leaves without it.
        own = f"{column.name}."
        faked = [p.removeprefix(own) for p in generated if p.startswith(own)]
        original: sql.Composable = sql.SQL("({}.{})::jsonb").format(table, name)
        doc = original
        for key in faked:
            at = key_value(original, key)
            values.append(
                (at, _unless_generated(at, fingerprint, generated[f"{column.name}.{key}"]))
            )
            doc = sql.SQL("({} #- {})").format(doc, safe_path(original, key))
        found = " CROSS JOIN LATERAL jsonb_path_query({}, {}) AS j(v)"
        leaves = sql.SQL(found + " WHERE jsonb_typeof(j.v) IN ('string', 'number')").format(
            doc, sql.Literal(_JSON_NODES)
        )
        # Each object's keys: a third cheaper than the path's .keyvalue().key. The
        # filter runs at the walk, before the keys; the CASE keeps an array or a
        # scalar from jsonb_object_keys (an error) whatever the plan.
        keys = sql.SQL(
            found + " CROSS JOIN LATERAL jsonb_object_keys("
            "CASE WHEN jsonb_typeof(j.v) = 'object' THEN j.v END) AS k(v)"
            " WHERE jsonb_typeof(j.v) = 'object'"
        ).format(original, sql.Literal(_JSON_NODES))
        values += [(sql.SQL("j.v #>> '{}'"), leaves), (sql.SQL("k.v"), keys)]
    return values


def _text_fields(
    value: sql.Composable, column: Column, path: str = ""
) -> list[tuple[str, sql.Composable]]:
    """Each scalar field of a composite ``value`` the leak check reads, a field's fields too.

    ``((t.contact).home).city`` for a city in the home of a contact, with its
    path (``contact.home.city``); a field that is an array or a JSON
    document is searched as its whole text.
    """
    found: list[tuple[str, sql.Composable]] = []
    for member in column.fields:
        part = sql.SQL("({}).{}").format(value, sql.Identifier(member.name))
        where = f"{path}.{member.name}"
        if member.fields and not member.is_array:
            found += _text_fields(part, member, where)
        elif member.category in _SEARCHED or member.is_array:
            found.append((where, part))
    return found


def _appended(scans: list[sql.Composable]) -> sql.Composable:
    """``scans`` joined by UNION ALL, nested in groups so that the parse stays shallow."""
    if len(scans) <= APPEND_GROUP:
        return sql.SQL(" UNION ALL ").join(scans)
    size = -(-len(scans) // APPEND_GROUP)  # each group's share, so that at most APPEND_GROUP
    return sql.SQL(" UNION ALL ").join(
        sql.SQL("({})").format(_appended(scans[i : i + size])) for i in range(0, len(scans), size)
    )


class _LeakTable:
    """A scratch table in the target holding the originals' fingerprints.

    Unlogged and committed on its own connection, so the load's transaction
    only reads it; analysed once filled, so the planner hashes it once for
    the whole target (a parallel hash semi-join; once per PROBES_PER_QUERY
    scans of a schema wider than any seen); dropped when the run ends, whatever happened.
    """

    def __init__(self, scratch: psycopg.Connection[Any], schema: str, active: bool) -> None:
        self.scratch = scratch
        self.table = sql.Identifier(schema, f"preview_leak_check_{secrets.token_hex(4)}")
        self.active = active  # no identifying column anywhere: nothing to fingerprint
        if self.active:
            # The planner needs the table's size and that its values are
            # distinct, not a histogram: a 3 000-row sample (statistics
            # target 10) tells it that in a tenth of the default's time.
            table = self.table
            scratch.execute(sql.SQL("CREATE UNLOGGED TABLE {} (d bigint NOT NULL)").format(table))
            scratch.execute(sql.SQL("ALTER TABLE {} ALTER d SET STATISTICS 10").format(table))

    def copy_into(self) -> sql.Composed:
        return sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(self.table)

    def seal(self) -> None:
        self.scratch.execute(sql.SQL("ANALYZE {}").format(self.table))

    def hits(
        self,
        conn: psycopg.Connection[Any],
        target: Schema,
        fingerprint: Fingerprint,
        generated: Mapping[str, Mapping[str, list[int]]],
        unsearched: Collection[Key] = frozenset(),
    ) -> dict[str, int]:
        """Target values whose fingerprint is an original's, by ``table.column``.

        ``generated`` holds, by table and column, the fingerprints of values
        the column's own rule writes that are not originals (a fake's pool):
        found in that column, they do not count. ``unsearched`` columns are
        public reference data the rules keep out of the search.
        """
        if not self.active:
            return {}
        searched: list[str] = []  # table.column, by its index k in the probes
        probes: list[sql.Composable] = []
        for table in target.tables:
            table_name = sql.Identifier(table.schema, table.name)
            own = generated.get(table.qualified, {})
            for column in table.columns:
                if not (column.category in _SEARCHED or column.is_array):
                    continue
                if (table.qualified, column.name) in unsearched:
                    continue
                k = sql.Literal(len(searched))
                searched.append(f"{table.qualified}.{column.name}")
                probes += [
                    sql.SQL("SELECT {} AS k, {} AS d FROM {}{}").format(
                        k, fingerprint.of(value), own_rows(table), joined
                    )
                    for value, joined in _searched_values(table_name, column, fingerprint, own)
                ]
        hits: dict[str, int] = {}
        for start in range(0, len(probes), PROBES_PER_QUERY):
            # Every table's values in one appended scan: the planner hashes the
            # fingerprints once for all of them (a parallel hash semi-join),
            # where a query per table hashed them again for each, however small
            # the table. A per-row VALUES list of the columns costs ~40 % more.
            rows = conn.execute(
                sql.SQL(
                    "SELECT u.k, count(*) FROM ({}) AS u"
                    " WHERE u.d IN (SELECT d FROM {}) GROUP BY u.k"
                ).format(
                    _appended(probes[start : start + PROBES_PER_QUERY]),
                    self.table,
                )
            ).fetchall()
            for index, count in rows:
                name = searched[int(index)]
                hits[name] = hits.get(name, 0) + int(count)
        return hits

    def drop(self) -> None:
        if self.active:
            self.scratch.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self.table))


class _DigestSender:
    """Streams every table's fingerprints into the leak table, and counts its rows.

    The counts are the copy's own check: every table must arrive with as
    many rows as the snapshot holds (a transform that lost rows would
    otherwise go unseen). With a shared snapshot it runs on a connection of
    its own in a thread, while the rows load; otherwise ``finish()`` runs it
    on the main source connection after the load.
    """

    def __init__(
        self, leak: _LeakTable, pipelines: list[TablePipeline], readers: SnapshotReaders
    ) -> None:
        self.leak = leak
        self.counted = pipelines
        self.pipelines = [p for p in pipelines if p.identifying]
        self.readers = readers
        self.sent = 0
        self.rows: dict[str, int] = {}
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self._abandoned = threading.Event()
        if readers.connections and self.counted:
            conn = readers.open()
            self.thread = threading.Thread(target=self._run_on, args=(conn, True), daemon=True)
            self.thread.start()

    def _run_on(self, conn: psycopg.Connection[Any], own: bool) -> None:
        try:
            self._send(conn)
        except BaseException as exc:  # re-raised by finish() in the loading thread
            self.error = exc
        finally:
            if own:
                conn.close()

    def _send(self, conn: psycopg.Connection[Any]) -> None:
        for pipeline in self.counted:
            row = conn.execute(pipeline.count()).fetchone()
            self.rows[pipeline.table.qualified] = int(row[0]) if row else 0
        if not self.pipelines:
            return
        ranges = tid_range_scans(conn)
        with self.leak.scratch.cursor() as cur, cur.copy(self.leak.copy_into()) as into:
            into.write(binary_copy.HEADER)
            for pipeline in self.pipelines:
                blocks = heap_blocks(conn, pipeline.source) if ranges else None
                with conn.cursor() as read, read.copy(pipeline.digests(blocks)) as rows:
                    for tuples in binary_copy.fields(bytes(row) for row in rows):
                        if self._abandoned.is_set():
                            raise RuntimeError("leak check abandoned")
                        into.write(tuples)
                        self.sent += len(tuples) // (len(_FINGERPRINT_TUPLE) + 8)
            into.write(binary_copy.TRAILER)
        self.leak.seal()

    def finish(self) -> int:
        """Wait until every fingerprint is in the target; how many there are."""
        if self.thread is None:
            self._run_on(self.readers.main, False)
        else:
            self.thread.join()
        if self.error is not None:
            raise self.error
        return self.sent

    def abandon(self) -> None:
        """The load failed: stop streaming and wait for the thread to let go."""
        self._abandoned.set()
        if self.thread is not None:
            self.thread.join()
