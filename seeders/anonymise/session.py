"""The session settings every connection of an anonymised copy runs under.

Values' text. How PostgreSQL writes a value as text depends on the session:
DateStyle writes 2 February 2024 as ``01/02/2024`` or ``02.02.2024``,
TimeZone moves a timestamptz (and decides what adding a day to one means
across a DST change), IntervalStyle, extra_float_digits, bytea_output and
lc_monetary change intervals, floats, bytea and money. Each server picks its
own defaults (postgresql.conf, ``ALTER DATABASE/ROLE ... SET``, the client's
``PG*`` environment). The anonymiser reads values as text in three places:
the rows of tables copied as text COPY, the keyed transforms' input
(``value::text``) and the leak check's fingerprints. Left to the servers, a
copy between two of them can read a date back as another date, and a rerun
against a server set up otherwise gives other pseudonyms and shifts.

Names. Function resolution prefers the best-matching argument types, so a
database's own ``public.left(varchar, integer)`` would run instead of the
built-in ``left(text, integer)`` inside a mask, whatever it does with the
original. The search path is ``pg_catalog`` alone; everything the seeders
name themselves is schema-qualified.

Every row. A copy reads whole tables in one long transaction: a role's
``statement_timeout`` or ``idle_in_transaction_session_timeout`` (common on
production replicas) would cut it short, and a row-level security policy
would hide rows without a word, leaving a partial copy and a leak check
blind to them. With ``row_security`` off, such a table fails the run instead
(unless the role may bypass the policy).

Speed. JIT is off: PostgreSQL compiles a query's expressions with LLVM when
its *estimated* cost passes ``jit_above_cost``, and the estimates are no
guide here: the leak check's probe of a 56 000-row shop is estimated at 31
million (each set-returning function over a JSON document is guessed at a
thousand rows), the transforms of a million-row table at 181 000. Compiling
takes 0.1-0.5 s a query, more than it saves on any table a preview holds
(that probe: 0.40 s with JIT, 0.10 s without); on a million rows the two
are level within the noise (the transforms' server time 3 % apart).

pg_dump pins the same settings for the same reasons.
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
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("row_security", "off"),
)
# Settings only some servers know, and the first version that does.
SINCE = (("jit", "off", 110000),)


def pinned(server_version: int) -> list[tuple[str, str]]:
    """What a server of this version is set to: :data:`CANONICAL`, and what it knows of SINCE."""
    return [*CANONICAL, *((name, value) for name, value, since in SINCE if server_version >= since)]


def canonical(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """``conn``, its session set to :func:`pinned` (and no transaction left open)."""
    settings = sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, false)").format(sql.Literal(name), sql.Literal(value))
        for name, value in pinned(conn.info.server_version)
    )
    with conn.transaction():
        conn.execute(sql.SQL("SELECT {}").format(settings))
    return conn


def bounded(conn: psycopg.Connection[Any], seconds: float | None) -> psycopg.Connection[Any]:
    """``conn`` with every statement and lock wait cut at ``seconds`` (None: no bound).

    For the pull request's database only: its CHECKs, index expressions and
    open transactions are its author's, and a ``pg_sleep`` in one of them
    must not hold a worker for ever. The source is never bounded this way
    (a long copy is a long copy), and the bound is generous: it cuts one
    statement, such as a whole table's COPY, not the run.
    """
    if seconds is None:
        return conn
    milliseconds = str(max(1, round(seconds * 1000)))
    with conn.transaction():
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('lock_timeout', %s, false)",
            (milliseconds, milliseconds),
        )
    return conn
