"""Parallel snapshot readers: every row once, one snapshot, and the same anonymised copy."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from seeders.anonymise import readers
from seeders.anonymise.anonymiser import Anonymiser, LeakDetected
from seeders.anonymise.readers import Planned, SnapshotReaders, block_ranges, heap_blocks
from seeders.anonymise.rules import parse_rules
from seeders.copy import binary_copy
from tests.seeders.shop_data import RULES

SALT = b"test-salt-for-readers"
TABLE = sql.Identifier("public", "items")


@given(blocks=st.integers(0, 100_000), parts=st.integers(1, 8))
def test_block_ranges_cover_the_heap_once(blocks: int, parts: int) -> None:
    ranges = block_ranges(sql.SQL("ctid"), blocks, parts)
    if blocks < readers.MIN_SPLIT_BLOCKS or parts == 1:
        assert ranges == [None]
        return
    assert len(ranges) == parts
    texts = [r.as_string(None) for r in ranges if r is not None]
    # Each range starts where the previous one ended; the first at 0, the last open.
    assert texts[0].startswith("ctid >= '(0,0)'::tid AND")
    for before, after in itertools.pairwise(texts):
        assert before.split("ctid < ")[1] == after.split("ctid >= ")[1].split(" AND")[0]
    assert " AND " not in texts[-1]


@pytest.fixture
def items(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 20000) g")
    return pg_url


def _rows(batches: Any) -> list[bytes]:
    return sorted(line for _, chunk in batches for line in chunk.splitlines())


def test_stream_passes_every_row_through_byte_for_byte(items: str) -> None:
    query = sql.SQL(
        "COPY (SELECT id, label || E'\\t\\n\\\\' || repeat('x', id % 700) FROM items) TO STDOUT"
    )
    with psycopg.connect(items) as conn:
        with conn.cursor() as cur, cur.copy(query) as copy:
            expected = b"".join(bytes(data) for data in copy)
        batches = list(readers.stream(conn, query))
        assert conn.execute("SELECT 1").fetchone() == (1,), "the connection is idle again"
    assert [rows for rows, _ in batches] == [readers.BATCH_ROWS] * 4
    assert b"".join(chunk for _, chunk in batches) == expected
    assert expected.count(b"\n") == 20000
    assert b"\\t\\n\\\\" in expected


@pytest.mark.parametrize("count", [0, 1, readers.BATCH_ROWS - 1, readers.BATCH_ROWS, 12001])
def test_binary_rows_come_without_header_and_trailer(items: str, count: int) -> None:
    """Whatever the batch boundaries, one header + the batches + one trailer is the table."""
    query = sql.SQL(
        "COPY (SELECT id, label FROM items ORDER BY id LIMIT {}) TO STDOUT (FORMAT binary)"
    )
    with psycopg.connect(items) as conn:
        batches = list(readers.stream(conn, query.format(count)))
        assert sum(rows for rows, _ in batches) == count
        assert all(rows for rows, _ in batches), "no empty batch"
        conn.execute("CREATE TEMP TABLE copied (id int, label text)")
        with conn.cursor() as cur, cur.copy("COPY copied FROM STDIN (FORMAT binary)") as copy:
            copy.write(binary_copy.HEADER)
            for _, chunk in batches:
                copy.write(chunk)
            copy.write(binary_copy.TRAILER)
        copied = conn.execute("SELECT * FROM copied ORDER BY id").fetchall()
        assert copied == conn.execute(f"SELECT * FROM items ORDER BY id LIMIT {count}").fetchall()


def test_a_copy_failing_midway_raises_the_servers_error_and_frees_the_connection(
    items: str,
) -> None:
    failing = sql.SQL("COPY (SELECT 1 / (15000 - id) FROM items ORDER BY id) TO STDOUT")
    with psycopg.connect(items) as conn:
        seen: list[int] = []

        def consume() -> None:
            for rows, _ in readers.stream(conn, failing):
                seen.append(rows)

        with pytest.raises(psycopg.errors.DivisionByZero, match="division by zero"):
            consume()
        assert sum(seen) == 10000, "the batches before the failure were delivered"
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (20000,)


@pytest.mark.parametrize("binary", [False, True])
def test_large_rows_come_in_batches_of_bounded_size(items: str, binary: bool) -> None:
    """Memory stays bounded by bytes, not only rows: 300 rows of 256 KiB are not one batch."""
    form = " (FORMAT binary)" if binary else ""
    query = sql.SQL(
        "COPY (SELECT id, repeat(md5(id::text), 8192) FROM items WHERE id <= 300) TO STDOUT" + form
    )
    with psycopg.connect(items) as conn:
        batches = list(readers.stream(conn, query))
    sizes = [len(chunk) for _, chunk in batches]
    assert sum(rows for rows, _ in batches) == 300
    assert max(sizes) <= readers.BATCH_BYTES + 300_000  # the budget, and the row that crossed it
    assert len(batches) >= 300 * 262_144 // (readers.BATCH_BYTES + 300_000)


def test_a_session_that_ends_raises_why_not_only_that_the_server_went_away(
    items: str,
) -> None:
    """A backend that is terminated sends its FATAL error, then closes the socket.

    Whether libpq has parsed the error (AdminShutdown) or read the closed
    socket first, the reason is in the message.
    """
    ends = sql.SQL("COPY (SELECT pg_terminate_backend(pg_backend_pid())) TO STDOUT")
    with psycopg.connect(items) as conn:
        with pytest.raises(psycopg.OperationalError, match="due to administrator command"):
            list(readers.stream(conn, ends))
        assert conn.closed


def test_a_stream_abandoned_early_leaves_the_connection_usable(items: str) -> None:
    with psycopg.connect(items) as conn:
        batches = readers.stream(conn, sql.SQL("COPY items TO STDOUT"))
        assert next(batches)[0] == readers.BATCH_ROWS
        batches.close()  # the consumer went away mid-copy
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (20000,)


@contextlib.contextmanager
def _snapshot_readers(
    url: str, count: int
) -> Iterator[tuple[psycopg.Connection[Any], SnapshotReaders]]:
    """A main connection in a REPEATABLE READ transaction, and ``count`` readers sharing it."""
    with psycopg.connect(url, autocommit=True) as main:
        main.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with main.transaction():
            pool = SnapshotReaders(main, lambda: psycopg.connect(url), count)
            try:
                yield main, pool
            finally:
                pool.close()


def test_parallel_readers_return_every_row_once_from_one_snapshot(
    items: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MIN_SPLIT_BLOCKS", 1)
    query = sql.SQL("COPY (SELECT id, label FROM {}{}) TO STDOUT")
    with psycopg.connect(items, autocommit=True) as main, psycopg.connect(items) as writer:
        main.read_only = True
        main.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with main.transaction():
            pool = SnapshotReaders(main, lambda: psycopg.connect(items), 3)
            try:
                assert pool.parallel == 3
                assert heap_blocks(main, TABLE) > 3
                # Committed after the snapshot was exported: no reader may see it.
                writer.execute("INSERT INTO items VALUES (20001, 'late')")
                writer.commit()
                pool.plan(
                    [
                        Planned(
                            "items",
                            TABLE,
                            lambda part: query.format(
                                TABLE, sql.SQL(" WHERE {}").format(part) if part else sql.SQL("")
                            ),
                        )
                    ]
                )
                split = _rows(pool.read("items"))
                whole = _rows(readers.stream(main, query.format(TABLE, sql.SQL(""))))
            finally:
                pool.close()
    assert split == whole
    assert len(split) == 20000
    assert b"20001\tlate" not in split


def test_a_failing_reader_fails_the_read_and_frees_the_others(
    items: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MIN_SPLIT_BLOCKS", 1)
    with _snapshot_readers(items, 2) as (_, pool):
        # Every reader reaches a row outside its range and divides by zero.
        failing = sql.SQL("COPY (SELECT id / (CASE WHEN {p} THEN 1 ELSE 0 END) FROM {t}) TO STDOUT")

        def query(part: sql.Composable | None) -> sql.Composed:
            assert part is not None
            return failing.format(p=part, t=TABLE)

        pool.plan([Planned("items", TABLE, query)])
        with pytest.raises(psycopg.errors.DivisionByZero):
            list(pool.read("items"))


def _small_tables(url: str, count: int) -> list[Planned]:
    """``count`` tables of 300 rows each, every row naming its table, planned in order."""
    planned = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(count):
            table = sql.Identifier("public", f"small{i}")
            conn.execute(sql.SQL("CREATE TABLE {} (id int, label text)").format(table))
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT g, {} FROM generate_series(1, 300) g").format(
                    table, sql.Literal(f"table {i}")
                )
            )
            query = sql.SQL("COPY (SELECT id, label FROM {}) TO STDOUT").format(table)
            planned.append(Planned(f"small{i}", table, lambda _part, q=query: q))
    return planned


def _readers_blocked(main: psycopg.Connection[Any], pool: SnapshotReaders) -> bool:
    """Whether every reader's session is idle (waiting on the consumer, or done)."""
    pids = [conn.info.backend_pid for conn in pool.connections]
    states = main.execute(
        "SELECT state FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
    ).fetchall()
    return len(states) == len(pids) and all(s == ("idle in transaction",) for s in states)


def test_readers_work_ahead_in_the_plans_order_and_no_further_than_allowed(items: str) -> None:
    """Small tables are read whole by whichever reader is free, ahead of the consumer: the
    second core transforms the next table while the first is loaded. Each read gets only
    its own table's rows, and no reader starts a table more than AHEAD_TABLES ahead, so a
    schema of thousands of small tables is never held in memory at once."""
    planned = _small_tables(items, 6)
    events: list[tuple[str, str]] = []  # list.append holds across threads
    with _snapshot_readers(items, 2) as (main, pool):
        pool.plan(planned, started=lambda name: events.append(("started", name)))
        ahead = [f"small{i}" for i in range(readers.AHEAD_TABLES + 1)]

        def settled() -> bool:  # between two tables a reader is idle for a moment
            return pool.waiting() == ahead and _readers_blocked(main, pool)

        deadline = time.monotonic() + 30
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # long enough for a reader that did not wait to go on
        assert pool.waiting() == ahead
        assert _readers_blocked(main, pool)
        with pytest.raises(RuntimeError, match="read small1 where the plan has small0"):
            list(pool.read("small1"))
        assert ("started", "small2") in events  # told while it is still ahead of the read
        for i, table in enumerate(planned):
            batches = pool.read(table.name)
            first = next(batches)
            events.append(("got", table.name))
            lines = _rows([first, *batches])
            assert len(lines) == 300
            assert {line.split(b"\t")[1] for line in lines} == {f"table {i}".encode()}
    for table in planned:  # told before any of a table's rows reach the consumer
        assert events.index(("started", table.name)) < events.index(("got", table.name))


def test_a_reader_failing_on_a_later_table_fails_the_read_and_stops_the_others(
    items: str,
) -> None:
    planned = _small_tables(items, 4)
    failing = sql.SQL("COPY (SELECT id / (id - 150) FROM {}) TO STDOUT").format(planned[2].table)
    planned[2] = Planned(planned[2].name, planned[2].table, lambda _part: failing)
    with _snapshot_readers(items, 2) as (main, pool):
        pool.plan(planned)
        with pytest.raises(psycopg.errors.DivisionByZero):
            [list(pool.read(table.name)) for table in planned]
        assert main.execute("SELECT 1").fetchone() == (1,)


def test_a_failing_started_callback_fails_the_read_instead_of_hanging_it(items: str) -> None:
    def started(name: str) -> None:
        raise ValueError(f"no bar for {name}")

    with _snapshot_readers(items, 2) as (_, pool):
        pool.plan(_small_tables(items, 2), started=started)
        with pytest.raises(ValueError, match="no bar for small"):
            list(pool.read("small0"))


def _copy(connections: tuple[Any, Any, Any], source: str, parallel: bool) -> Any:
    more = (lambda: psycopg.connect(source, autocommit=True)) if parallel else None
    return Anonymiser(*connections, parse_rules(RULES), SALT, more).run()


@pytest.fixture
def connections(source: str, target: str) -> Any:
    with (
        psycopg.connect(source, autocommit=True) as src,
        psycopg.connect(target, autocommit=True) as dst,
        psycopg.connect(target, autocommit=True) as scratch,
    ):
        yield src, dst, scratch


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        tables = ["customers", "warehouses", "products", "stock", "orders", "shipments"]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}


def test_parallel_copy_equals_the_sequential_one(
    connections: Any, source: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequential = _copy(connections, source, parallel=False)
    first = _dump(target)
    monkeypatch.setattr(readers, "MIN_SPLIT_BLOCKS", 1)  # split even these small tables
    parallel = _copy(connections, source, parallel=True)
    assert parallel.rows == sequential.rows
    assert parallel.digests == sequential.digests > 0
    assert _dump(target) == first


def test_parallel_copy_still_catches_planted_pii(
    connections: Any, source: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE warehouses SET city = (SELECT full_name FROM customers WHERE id = 9)")
    monkeypatch.setattr(readers, "MIN_SPLIT_BLOCKS", 1)
    with pytest.raises(LeakDetected) as info:
        _copy(connections, source, parallel=True)
    assert info.value.hits == {"public.warehouses.city": 2}
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM warehouses").fetchone() == (0,), "rolled back"
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'preview_leak_check%'"
        ).fetchone()
        assert leftovers == (0,), "scratch tables are dropped"
