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


@contextmanager
def running_server(durable: bool = False) -> Iterator[PgServer]:
    """A throwaway server; ``durable`` keeps fsync on (benchmarks of durable writes)."""
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="preview-pg-"))
    data = root / "data"
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    if not durable:  # tests need speed, not crash safety
        options += " -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
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
