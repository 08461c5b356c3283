"""A throwaway PostgreSQL server for tests, started from the installed binaries.

PostgreSQL refuses to run as root, so when the tests run as root the server
runs as the ``postgres`` system user (via ``runuser``). Trust auth on
127.0.0.1 only; everything lives in a temporary directory removed at exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg


def _bindir() -> Path:
    explicit = os.environ.get("PREVIEW_TEST_PG_BINDIR")
    candidates = [Path(explicit)] if explicit else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").is_file():
            return candidate
    raise RuntimeError(
        "PostgreSQL server binaries not found; install PostgreSQL (e.g. apt-get install "
        "postgresql-15) or set PREVIEW_TEST_PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PgServer:
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, encoding: str | None = None) -> str:
        """A fresh database; ``encoding`` (e.g. ``LATIN1``) other than the server's UTF-8."""
        options = ""
        if encoding:  # another encoding needs template0 and a locale that fits it
            options = f" ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')  # test-owned names only
            conn.execute(f'CREATE DATABASE "{name}"{options}'.encode())
        return self.url(name)


def _as_postgres() -> list[str]:
    """The command prefix that runs a server binary as ``postgres`` when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _private_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="preview-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


@contextmanager
def _serving(root: Path, options: str) -> Iterator[PgServer]:
    """Start the server whose data directory is ``root/data``; stop it and remove ``root`` after."""
    bindir, prefix, data = _bindir(), _as_postgres(), root / "data"
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 {options}"
    try:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
             "-l", str(root / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield PgServer(port)
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


# Tests need speed, not crash safety.
_FAST = "-c fsync=off -c full_page_writes=off"


@contextmanager
def running_server(durable: bool = False) -> Iterator[PgServer]:
    """A throwaway server; ``durable`` keeps fsync on (benchmarks of durable writes)."""
    root = _private_root()
    subprocess.run(
        [*_as_postgres(), str(_bindir() / "initdb"), "-D", str(root / "data"), "-U", "postgres",
         "-A", "trust", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with _serving(root, "" if durable else _FAST) as server:
        yield server


@contextmanager
def running_standby(primary: PgServer, options: str = "") -> Iterator[PgServer]:
    """A hot standby streaming from ``primary`` (a base backup of it); ``options`` for its server.

    The primary needs nothing more than initdb's defaults: ``wal_level``
    replica, WAL senders, and trust for replication from 127.0.0.1.
    """
    root = _private_root()
    subprocess.run(
        [*_as_postgres(), str(_bindir() / "pg_basebackup"), "-h", "127.0.0.1",
         "-p", str(primary.port), "-U", "postgres", "-D", str(root / "data"), "-R",
         "-X", "stream", "--checkpoint", "fast", "--no-sync"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with _serving(root, f"{_FAST} {options}") as standby:
        yield standby


def wait_for_replay(primary: PgServer, standby: PgServer, timeout: float = 30) -> None:
    """Until the standby has replayed everything the primary has written so far.

    The primary's insert position can lie past a page header no record
    fills yet (an idle primary writes its next record within 15 s), so one
    small record follows it: replaying that one replays everything before.
    """
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        conn.execute("SELECT pg_logical_emit_message(false, 'preview-tests', 'replayed?')")
    assert row is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        while True:
            done = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)
            ).fetchone()
            if done and done[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"standby on port {standby.port} did not replay {row[0]}")
            time.sleep(0.05)
