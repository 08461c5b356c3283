"""Session settings under which a value's text is the same on every server.

How PostgreSQL writes a value as text depends on the session: DateStyle
writes 2 February 2024 as ``01/02/2024`` or ``02.02.2024``, TimeZone moves a
timestamptz (and decides what adding a day to one means across a DST
change), IntervalStyle, extra_float_digits, bytea_output and lc_monetary
change intervals, floats, bytea and money. Each server picks its own
defaults (postgresql.conf, ``ALTER DATABASE/ROLE ... SET``, the client's
``PG*`` environment). The anonymiser reads values as text in three places:
the rows of tables copied as text COPY, the keyed transforms' input
(``value::text``) and the leak check's fingerprints. Left to the servers, a
copy between two of them can read a date back as another date, and a rerun
against a server set up otherwise gives other pseudonyms and shifts. So
every connection of a run speaks the same settings, as pg_dump's do.

The search path is pinned to ``pg_catalog`` for a like reason: function
resolution prefers the best-matching argument types, so a database's own
``public.left(varchar, integer)`` would run instead of the built-in
``left(text, integer)`` inside a mask, whatever it does with the original.
Everything the seeders name themselves is schema-qualified.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

# ISO dates read back the same under any DateStyle order; 'postgres'
# intervals under any IntervalStyle; extra_float_digits 3 is round-trip
# exact on every server version; lc_monetary C exists everywhere.
CANONICAL = (
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, YMD"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("search_path", "pg_catalog"),
)


def canonical(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """``conn``, its session set to :data:`CANONICAL` (and no transaction left open)."""
    settings = sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, false)").format(sql.Literal(name), sql.Literal(value))
        for name, value in CANONICAL
    )
    with conn.transaction():
        conn.execute(sql.SQL("SELECT {}").format(settings))
    return conn
