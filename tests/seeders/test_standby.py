"""Anonymised copies from a hot standby, the source the rules expect in production."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from seeders.anonymise.anonymiser import Anonymiser, SourceConflict
from seeders.anonymise.rules import parse_rules
from tests.pg_server import PgServer, running_server, running_standby, wait_for_replay
from tests.seeders.connections import copy_connections

SALT = b"standby-salt"
DDL = "CREATE TABLE people (id bigint PRIMARY KEY, email text NOT NULL, note text)"
# ~11 000 heap blocks (86 MiB): read by two connections at once, and more than
# either can have in flight (its queue and the socket buffers) while the
# copy waits, so a conflict in the middle of the copy finds it still reading.
ROWS = 200_000
FILL = f"""INSERT INTO people SELECT g, 'p' || g || '@corp.example', repeat('n', 400)
          FROM generate_series(1, {ROWS}) g"""
RULES = parse_rules(
    {"version": 1, "tables": {"people": {"id": "keep", "email": "hash", "note": "keep"}}}
)


@pytest.fixture(scope="module")
def primary() -> Iterator[PgServer]:
    with running_server() as server:
        url = server.create_database("app")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DDL)
            conn.execute(FILL)
            conn.execute("VACUUM ANALYZE people")
        yield server


def target_on(server: PgServer, name: str) -> str:
    url = server.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
    return url


def anonymiser(source: str, conns: tuple[Any, Any, Any]) -> Anonymiser:
    more = lambda: psycopg.connect(source, autocommit=True)  # noqa: E731
    return Anonymiser(*conns, RULES, SALT, more, jobs=2)


def test_copies_from_a_hot_standby_with_readers_sharing_its_snapshot(primary: PgServer) -> None:
    with running_standby(primary) as standby:
        wait_for_replay(primary, standby)
        target = target_on(primary, "from_standby")
        with copy_connections(standby.url("app"), target) as conns:
            dst = conns[1]
            run = anonymiser(standby.url("app"), conns)
            assert run.jobs == 2  # the standby exported its snapshot to a second reader
            report = run.run()
            assert report.rows == {"public.people": ROWS}
            assert not report.leak_hits
            copied = dst.execute("SELECT count(*), count(DISTINCT email) FROM public.people")
            assert copied.fetchone() == (ROWS, ROWS)


def test_a_conflict_with_recovery_names_its_cause_and_the_fix(primary: PgServer) -> None:
    """The primary vacuums away rows the copy's snapshot still reads; the standby cancels it.

    The copy goes on reading meanwhile (a reader blocked on a full socket
    takes its cancel only once it can write again, and replay waits for
    it), a little slowed so that replay surely comes first.
    """
    with running_standby(primary, "-c max_standby_streaming_delay=0") as standby:
        wait_for_replay(primary, standby)
        target = target_on(primary, "conflict")
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("INSERT INTO people VALUES (1, 'before@corp.example', 'kept')")
        with copy_connections(standby.url("app"), target) as conns:
            run = anonymiser(standby.url("app"), conns)
            batches: list[int] = []

            def vacuum_on_primary(table: str, rows: int) -> None:
                batches.append(rows)
                if len(batches) == 1:
                    with psycopg.connect(primary.url("app"), autocommit=True) as conn:
                        conn.execute("DELETE FROM people WHERE id > %s", (ROWS // 2,))
                        conn.execute("VACUUM people")
                else:
                    time.sleep(0.05)

            try:
                with pytest.raises(SourceConflict) as info:
                    run.run(vacuum_on_primary)
            finally:  # the other tests' rows back
                with psycopg.connect(primary.url("app"), autocommit=True) as conn:
                    conn.execute("DELETE FROM people")
                    conn.execute(FILL)
                    conn.execute("VACUUM ANALYZE people")
            assert sum(batches) < ROWS  # cancelled in the middle
            message = str(info.value)
            assert "conflict with recovery" in message
            assert "hot_standby_feedback = on" in message
            kept = conns[1].execute("SELECT email FROM public.people").fetchall()
            assert kept == [("before@corp.example",)]  # rolled back: nothing lost


def test_a_source_session_ended_after_the_last_row_does_not_fail_the_finished_copy(
    primary: PgServer,
) -> None:
    """Every row read, checked and committed: ending the source's snapshot cannot undo that.

    A standby ends a session idle in a transaction that conflicts with
    replay; here the snapshot's session is ended once the last row arrives.
    """
    with running_standby(primary) as standby:
        wait_for_replay(primary, standby)
        target = target_on(primary, "ended")
        with copy_connections(standby.url("app"), target) as conns:
            run = anonymiser(standby.url("app"), conns)
            seen: list[int] = []

            def end_snapshot_session(table: str, rows: int) -> None:
                seen.append(rows)
                if sum(seen) == ROWS:
                    with psycopg.connect(standby.url("app"), autocommit=True) as admin:
                        pid = conns[0].info.backend_pid
                        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

            report = run.run(end_snapshot_session)
            assert report.rows == {"public.people": ROWS}
            assert conns[0].closed  # the snapshot's session did end
            copied = conns[1].execute("SELECT count(*) FROM public.people").fetchone()
            assert copied == (ROWS,)
