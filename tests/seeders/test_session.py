"""The session settings every connection of an anonymised copy speaks."""

from __future__ import annotations

import psycopg
from psycopg import pq, sql

from seeders.anonymise.session import CANONICAL, canonical, pinned
from tests.pg_server import PgServer

HOSTILE = [
    ("DateStyle", "German"), ("TimeZone", "Asia/Kolkata"), ("IntervalStyle", "iso_8601"),
    ("extra_float_digits", "-2"), ("bytea_output", "escape"), ("client_encoding", "LATIN1"),
    ("jit", "on"),
]  # fmt: skip


def test_every_setting_is_in_force_whatever_the_database_sets(pg_server: PgServer) -> None:
    url = pg_server.create_database("session_settings")
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        for setting, value in HOSTILE:
            admin.execute(
                sql.SQL("ALTER DATABASE session_settings SET {} = {}").format(
                    sql.Identifier(setting), sql.Literal(value)
                )
            )
    with psycopg.connect(url) as conn:  # not autocommit: the settings must outlive a transaction
        assert canonical(conn) is conn
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        settings = pinned(conn.info.server_version)
        assert set(CANONICAL) <= set(settings)
        assert ("jit", "off") in settings  # every supported server knows it (>= 11)
        for setting, value in settings:
            shown = conn.execute("SELECT current_setting(%s)", (setting,)).fetchone()
            assert shown == (value,), setting
        assert conn.execute("SELECT date '2024-02-01'::text").fetchone() == ("2024-02-01",)
