"""Parallel ``COPY TO`` readers that all see one snapshot of the source.

The anonymiser's transforms run inside the source server while it streams
(:mod:`seeders.anonymise.transform`); one connection keeps one server core busy. These
readers split a large table into heap-block ranges (``ctid`` ranges: a TID
range scan on PostgreSQL ≥ 14, a filtered scan before) and read them on
several connections at once, each in a transaction that imported the
snapshot the main source transaction exported, so every reader sees exactly
the same rows. A hot standby can export snapshots (PostgreSQL ≥ 10); where
the export is refused (a transaction-mode pooler, for one) the copy falls
back to the main connection alone (``SnapshotReaders.supported``).

The readers also work ahead of the consumer: while one table is loaded,
a free reader transforms the next (at most AHEAD_TABLES ahead). Batches
travel through bounded queues, so memory stays flat however large the
table and however many tables: a reader that gets ahead waits.
"""

from __future__ import annotations

import contextlib
import queue
import select
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq, sql

from seeders.copy import binary_copy

BATCH_ROWS = 5000
# And at most this many bytes (but for the row that crosses it): a table of
# documents or images would otherwise put gigabytes in one batch.
BATCH_BYTES = 4 << 20
# Tables smaller than this many heap blocks (8 MiB at the default block size)
# are read by one reader: splitting them costs more than it saves.
MIN_SPLIT_BLOCKS = 1024
_QUEUED_BATCHES = 4
# Tables past the one being consumed that readers may start on. Each holds at
# most its queue (_QUEUED_BATCHES batches a range), so memory stays bounded
# however many small tables fit whole in their queues.
AHEAD_TABLES = 2
# How often a waiting reader or consumer looks whether the others have stopped.
_POLL_SECONDS = 0.05

Batch = tuple[int, bytes]  # (rows, COPY text of those rows)
Connect = Callable[[], psycopg.Connection[Any]]
QueryFor = Callable[[sql.Composable | None], sql.Composed]  # block-range condition → COPY


def stream(
    conn: psycopg.Connection[Any], query: sql.SQL | sql.Composed
) -> Generator[Batch, None, None]:
    """Rows of one ``COPY ... TO STDOUT``, passed through in batches of BATCH_ROWS or BATCH_BYTES.

    psycopg starts the COPY; its rows are then taken from libpq directly.
    The server sends one message per row, and ``Copy.read()`` costs
    ~0.55 µs of Python per message (a generator driven through the wait
    loop) where ``get_copy_data`` costs half that: on two cores that is a
    tenth of a second per million rows that the transforms get instead.
    Binary rows come without the stream's header and trailer, so that rows
    of several streams can follow one another into one ``COPY FROM``.
    """
    with conn.cursor() as cur, cur.copy(query):
        pgconn = conn.pgconn
        binary = bool(cur.pgresult and cur.pgresult.binary_tuples)
        get, batch, header, held = pgconn.get_copy_data, [], binary, 0
        while True:
            size, data = get(1)  # 1: never block while holding the GIL
            if size > 0:
                if header:  # the first message begins with the file header
                    data, header = data[binary_copy.header_length(data) :], False
                    if not data:
                        continue
                batch.append(bytes(data))
                held += size
                if len(batch) >= BATCH_ROWS or held >= BATCH_BYTES:
                    yield _rows(batch, binary)
                    batch, held = [], 0
            elif size == 0:
                _readable(pgconn)
            else:  # -1: the COPY is over; its outcome follows
                break
        _end_of_copy(pgconn, conn.info.encoding)
    rows, chunk = _rows(batch, binary)
    if rows:
        yield rows, chunk


def _rows(messages: list[bytes], binary: bool) -> Batch:
    """A batch of row messages, without a binary stream's trailer if it is among them."""
    if binary and messages and messages[-1] == binary_copy.TRAILER:
        messages.pop()  # no row is ever those two bytes: its field count comes first
    return len(messages), b"".join(messages)


def _readable(pgconn: pq.abc.PGconn) -> None:
    """Wait (GIL released) until the server has sent more, and take it in."""
    select.select([pgconn.socket], [], [])
    pgconn.consume_input()


def _end_of_copy(pgconn: pq.abc.PGconn, encoding: str) -> None:
    """Collect the COPY's final result; raise the server's error if it failed.

    What is already buffered is parsed before the socket is read again: a
    server that ends the session (a FATAL error: an administrator's
    terminate, a standby's recovery conflict) sends its error and closes
    the socket, and reading the closed socket first can report only that
    the server went away, not why.
    """
    failed: pq.abc.PGresult | None = None
    while True:
        if pgconn.is_busy():
            _readable(pgconn)
            continue
        result = pgconn.get_result()
        if result is None:
            break
        if result.status != pq.ExecStatus.COMMAND_OK and failed is None:
            failed = result
    if failed is not None:
        raise psycopg.errors.error_from_result(failed, encoding=encoding)


def heap_blocks(conn: psycopg.Connection[Any], table: sql.Composable) -> int:
    """The table's heap size in blocks, now."""
    return heap_blocks_of(conn, [table])[0]


def heap_blocks_of(conn: psycopg.Connection[Any], tables: Sequence[sql.Composable]) -> list[int]:
    """Each table's heap size in blocks, now, in one round trip."""
    rows = conn.execute(
        "SELECT pg_relation_size(u.name::regclass) / current_setting('block_size')::bigint"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS u(name, n) ORDER BY u.n",
        [[table.as_string(conn) for table in tables]],
    ).fetchall()
    return [int(row[0]) for row in rows]


def tid_range_scans(conn: psycopg.Connection[Any]) -> bool:
    """Whether a ctid range is read by a TID range scan (PostgreSQL ≥ 14), not a full scan."""
    return conn.info.server_version >= 140000


def block_ranges(ctid: sql.Composable, blocks: int, parts: int) -> list[sql.Composable | None]:
    """Conditions splitting a heap of ``blocks`` blocks into ``parts`` ctid ranges.

    The last range is open-ended: rows the snapshot sees never lie past the
    heap's end, but the end is read once and the heap may have grown since.
    """
    if parts <= 1 or blocks < MIN_SPLIT_BLOCKS:
        return [None]
    bounds = [blocks * i // parts for i in range(1, parts)]
    conditions: list[sql.Composable | None] = []
    low = 0
    for high in bounds:
        conditions.append(
            sql.SQL("{c} >= {}::tid AND {c} < {}::tid").format(
                sql.Literal(f"({low},0)"), sql.Literal(f"({high},0)"), c=ctid
            )
        )
        low = high
    conditions.append(sql.SQL("{} >= {}::tid").format(ctid, sql.Literal(f"({low},0)")))
    return conditions


class _Stop(Exception):
    """The consumer went away; a reader abandons its COPY."""


@dataclass
class _Done:
    error: BaseException | None = None


@dataclass(frozen=True)
class Planned:
    """A table to read: its name (for the loader), its relation, and its COPY by block range."""

    name: str
    table: sql.Identifier
    query_for: QueryFor


@dataclass
class _Reading:
    """One planned table's COPYs and the bounded queue its readers fill."""

    index: int  # in the plan
    name: str
    queries: list[sql.Composed]
    out: queue.Queue[Batch | _Done]


class SnapshotReaders:
    """Extra source connections in the snapshot of ``main``'s open transaction.

    Use inside the main connection's REPEATABLE READ transaction: ``plan()``
    the tables in the order they will be consumed, ``read()`` each in turn,
    and ``close()`` to end the readers' transactions and connections.

    Every reader works ahead of the consumer. A table of MIN_SPLIT_BLOCKS or
    more is split into one block range per reader; a smaller one is read
    whole by the first reader free, while another reads the next table. In a
    schema of many small tables, one table at a time kept one source core
    busy and the other idle: the transforms are most of a copy's work.
    """

    def __init__(self, main: psycopg.Connection[Any], connect: Connect | None, count: int) -> None:
        self.main = main
        self.connections: list[psycopg.Connection[Any]] = []
        self._connect = connect
        self._snapshot = ""
        self._stop = threading.Event()
        self._failed: BaseException | None = None
        self._plan: list[Planned] = []
        self._readings: list[_Reading] = []
        self._parts: Iterator[tuple[_Reading, sql.Composed]] = iter(())
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._consuming = 0  # the plan's index of the table being read
        self._threads: list[threading.Thread] = []
        self._started: Callable[[str], None] | None = None
        if connect is None or count <= 1:
            return
        # Must be the transaction's first statement, outside any savepoint
        # (PostgreSQL exports no snapshot from a subtransaction).
        row = main.execute("SELECT pg_export_snapshot()").fetchone()
        self._snapshot = str(row[0]) if row else ""
        for _ in range(count):
            self.connections.append(self.open())

    @staticmethod
    def supported(main: psycopg.Connection[Any]) -> bool:
        """Whether ``main``'s server exports snapshots (tried in a throwaway transaction)."""
        try:
            with main.transaction():
                main.execute("SELECT pg_export_snapshot()")
        except psycopg.Error:
            return False
        return True

    def open(self) -> psycopg.Connection[Any]:
        """One more connection in the shared snapshot (the caller closes it)."""
        if self._connect is None or not self._snapshot:
            raise RuntimeError("no exported snapshot to share")
        conn = self._connect()
        try:
            conn.autocommit = True  # the explicit BEGIN below opens the only transaction
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self._snapshot)))
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def parallel(self) -> int:
        return max(1, len(self.connections))

    def plan(self, tables: Sequence[Planned], started: Callable[[str], None] | None = None) -> None:
        """The tables ``read()`` will be asked for, in that order; the readers start on them.

        ``started`` is told a table's name (from a reader's thread) when its
        first rows are being made, which may be long before ``read()`` asks
        for them: a progress bar's clock for the table starts there.
        """
        if self._plan:
            raise RuntimeError("the readers already have a plan")
        self._plan = list(tables)
        self._started = started
        if not self.connections:
            return  # the main connection reads each table when asked
        sizes = heap_blocks_of(self.main, [planned.table for planned in self._plan])
        for index, (planned, blocks) in enumerate(zip(self._plan, sizes, strict=True)):
            ctid = sql.SQL("{}.ctid").format(planned.table)
            ranges = block_ranges(ctid, blocks, self.parallel)
            queries = [planned.query_for(r) for r in ranges]
            out: queue.Queue[Batch | _Done] = queue.Queue(_QUEUED_BATCHES * len(ranges))
            self._readings.append(_Reading(index, planned.name, queries, out))
        self._parts = iter([(r, q) for r in self._readings for q in r.queries])
        self._threads = [
            threading.Thread(target=self._work, args=(conn,), daemon=True)
            for conn in self.connections
        ]
        for thread in self._threads:
            thread.start()

    def read(self, name: str) -> Iterator[Batch]:
        """Every batch of the next planned table, which must be ``name``."""
        if not self._plan or self._plan[0].name != name:
            expected = self._plan[0].name if self._plan else "nothing"
            raise RuntimeError(f"read {name} where the plan has {expected} next")
        planned = self._plan.pop(0)
        if not self.connections:
            if self._started is not None:
                self._started(name)
            yield from stream(self.main, planned.query_for(None))
            return
        reading = self._readings.pop(0)
        with self._turn:
            self._consuming = reading.index
            self._turn.notify_all()
        remaining = len(reading.queries)
        while remaining:
            try:
                item = reading.out.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._failed is not None:  # a reader failed, perhaps on another table
                    raise self._failed from None
                continue
            if not isinstance(item, _Done):
                yield item
                continue
            remaining -= 1
            if item.error is not None:
                raise item.error

    def waiting(self) -> list[str]:
        """The planned tables that have batches queued, not yet read."""
        return [r.name for r in self._readings if not r.out.empty()]

    def _work(self, conn: psycopg.Connection[Any]) -> None:
        """One reader: the plan's next block range, and so on, each into its table's queue."""
        while not self._stop.is_set():
            with self._lock:
                part = next(self._parts, None)
            if part is None:
                return
            reading, query = part
            with self._turn:  # no further ahead than AHEAD_TABLES: each holds a full queue
                while reading.index > self._consuming + AHEAD_TABLES and not self._stop.is_set():
                    self._turn.wait(_POLL_SECONDS)
            if self._stop.is_set():  # stopped while waiting: start no COPY
                return
            try:  # a callback's failure too is the consumer's to raise, not a hang
                if self._started is not None:
                    self._started(reading.name)
                for batch in stream(conn, query):
                    self._put(reading, batch)
            except _Stop:
                return
            except BaseException as exc:  # handed to the consumer, which re-raises it
                if self._failed is None:  # the first failure is the cause
                    self._failed = exc
                self._stop.set()  # the others need not go on with a failed copy
                with contextlib.suppress(_Stop):
                    self._put(reading, _Done(exc))
                return
            with contextlib.suppress(_Stop):
                self._put(reading, _Done())

    def _put(self, reading: _Reading, item: Batch | _Done) -> None:
        """Queue ``item`` once there is room; give up (``_Stop``) when the readers stop."""
        while True:
            if self._stop.is_set() and not isinstance(item, _Done):
                raise _Stop
            try:
                reading.out.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                if self._stop.is_set():
                    raise _Stop from None

    def close(self) -> None:
        """Stop the readers (mid-table if the consumer went away) and close their connections."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []
        for conn in self.connections:
            conn.close()
        self.connections = []
