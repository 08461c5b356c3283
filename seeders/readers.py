"""Parallel ``COPY TO`` readers that all see one snapshot of the source.

The anonymiser's transforms run inside the source server while it streams
(:mod:`seeders.transform`); one connection keeps one server core busy. These
readers split a large table into heap-block ranges (``ctid`` ranges: a TID
range scan on PostgreSQL ≥ 14, a filtered scan before) and read them on
several connections at once, each in a transaction that imported the
snapshot the main source transaction exported, so every reader sees exactly
the same rows. A hot standby can export snapshots (PostgreSQL ≥ 10); where
the export is refused (a transaction-mode pooler, for one) the copy falls
back to the main connection alone (``SnapshotReaders.supported``).

Batches travel through bounded queues, so memory stays flat however large
the table: a reader that gets ahead waits for the consumer.
"""

from __future__ import annotations

import contextlib
import queue
import select
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq, sql

from seeders import binary_copy

BATCH_ROWS = 5000
# And at most this many bytes (but for the row that crosses it): a table of
# documents or images would otherwise put gigabytes in one batch.
BATCH_BYTES = 4 << 20
# Tables smaller than this many heap blocks (8 MiB at the default block size)
# are read by one reader: splitting them costs more than it saves.
MIN_SPLIT_BLOCKS = 1024
_QUEUED_BATCHES = 4

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
    row = conn.execute(
        sql.SQL(
            "SELECT pg_relation_size({}::regclass) / current_setting('block_size')::bigint"
        ).format(sql.Literal(table.as_string(conn)))
    ).fetchone()
    return int(row[0]) if row else 0


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


class SnapshotReaders:
    """Extra source connections in the snapshot of ``main``'s open transaction.

    Use inside the main connection's REPEATABLE READ transaction; ``close()``
    ends the readers' transactions and connections.
    """

    def __init__(self, main: psycopg.Connection[Any], connect: Connect | None, count: int) -> None:
        self.main = main
        self.connections: list[psycopg.Connection[Any]] = []
        self._connect = connect
        self._snapshot = ""
        self._stop = threading.Event()
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

    def blocks(self, table: sql.Composable) -> int:
        return heap_blocks(self.main, table)

    def read(self, table: sql.Identifier, query_for: QueryFor) -> Iterator[Batch]:
        """Every batch of one table, from as many readers as it is worth."""
        ranges: list[sql.Composable | None] = [None]
        if self.connections:
            ctid = sql.SQL("{}.ctid").format(table)
            ranges = block_ranges(ctid, self.blocks(table), self.parallel)
        if len(ranges) == 1:
            yield from stream(
                self.connections[0] if self.connections else self.main, query_for(None)
            )
        else:
            yield from self._parallel([query_for(r) for r in ranges])

    def _parallel(self, queries: list[sql.Composed]) -> Iterator[Batch]:
        self._stop.clear()
        out: queue.Queue[Batch | _Done] = queue.Queue(maxsize=_QUEUED_BATCHES * len(queries))
        threads = [
            threading.Thread(target=self._read_range, args=(conn, query, out), daemon=True)
            for conn, query in zip(self.connections, queries, strict=True)
        ]
        for thread in threads:
            thread.start()
        running, error = len(threads), None
        try:
            while running:
                item = out.get()
                if not isinstance(item, _Done):
                    if error is None:
                        yield item
                    continue
                running -= 1
                if item.error is not None and error is None:
                    error = item.error
                    self._stop.set()  # the others need not finish a failed copy
            if error is not None:
                raise error
        finally:
            self._stop.set()  # a no-op when every reader is done; else they give up
            while any(t.is_alive() for t in threads):
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.1)

    def _read_range(
        self, conn: psycopg.Connection[Any], query: sql.Composed, out: queue.Queue[Batch | _Done]
    ) -> None:
        try:
            for batch in stream(conn, query):
                if self._stop.is_set():
                    raise _Stop
                out.put(batch)
        except _Stop:
            out.put(_Done())
        except BaseException as exc:  # handed to the consumer, which re-raises it
            out.put(_Done(exc))
        else:
            out.put(_Done())

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.connections = []
