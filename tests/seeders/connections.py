"""Databases and connections an anonymised copy runs on, opened for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from seeders.anonymise.anonymiser import Anonymiser
from seeders.anonymise.rules import Rules, parse_rules
from tests.pg_server import PgServer

SALT = b"test-salt"


@contextmanager
def copy_connections(source: str, target: str) -> Iterator[tuple[Any, Any, Any]]:
    """What an anonymised copy runs on: the source, the target, and the target's scratch."""
    with (
        psycopg.connect(source, autocommit=True) as src,
        psycopg.connect(target, autocommit=True) as dst,
        psycopg.connect(target, autocommit=True) as scratch,
    ):
        yield src, dst, scratch


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode()).fetchall()


def databases(
    pg_server: PgServer, prefix: str, ddl: str, fill: str = "", target_encoding: str | None = None
) -> tuple[str, str]:
    """A source and a target database of the same schema (``ddl``); ``fill`` runs on the source."""
    source = pg_server.create_database(f"{prefix}_source")
    target = pg_server.create_database(f"{prefix}_target", encoding=target_encoding)
    for url in (source, target):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(ddl.encode())
    if fill:
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute(fill.encode())
    return source, target


def rules_for(tables: dict[str, Any]) -> Rules:
    """Rules for these tables (version 1)."""
    return parse_rules({"version": 1, "tables": tables})


def copy_between(source: str, target: str, rules: Rules) -> Any:
    """One anonymised copy on fresh connections (default client encodings)."""
    with copy_connections(source, target) as conns:
        return Anonymiser(*conns, rules, SALT).run()
