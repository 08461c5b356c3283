"""Composite values over arbitrary text (quotes, commas, parentheses, backslashes, tabs).

A row literal the synthetic seeder writes reads back field for field; an
anonymised copy keeps a kept field byte for byte beside a transformed one,
and no original of the transformed field survives.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seeders.anonymise.anonymiser import Anonymiser
from seeders.anonymise.rules import parse_rules
from seeders.synthetic.values import escape, record_literal
from tests.pg_server import PgServer

SCHEMA = """
CREATE TYPE trio AS (a text, b text, c text);
CREATE TABLE things (id int PRIMARY KEY, v trio NOT NULL);
"""
# Text PostgreSQL can store (no NUL), hostile to a row literal's syntax on purpose.
HOSTILE = st.text(
    st.one_of(
        st.sampled_from(list('(),"\\ \t\n\r{}')),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=30,
)
RULES = parse_rules(
    {"version": 1, "tables": {"things": {"id": "keep", "v": {"fields": {
        "a": "keep", "b": "hash", "c": {"fake": "city"}}}}}}
)  # fmt: skip
SALT = b"composite-salt-0123456789"


@pytest.fixture(scope="module")
def databases(pg_server: PgServer) -> tuple[str, str]:
    urls = (
        pg_server.create_database("composite_prop_source"),
        pg_server.create_database("composite_prop_target"),
    )
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA)
    return urls


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=st.tuples(HOSTILE, HOSTILE, HOSTILE))
def test_a_row_literal_reads_back_field_for_field(
    databases: tuple[str, str], fields: tuple[str, str, str]
) -> None:
    source, _ = databases
    with psycopg.connect(source) as conn:
        conn.execute("DELETE FROM things")
        with conn.cursor().copy("COPY things FROM STDIN") as copy:
            copy.write("1\t" + escape(record_literal(fields)) + "\n")
        assert conn.execute("SELECT (v).a, (v).b, (v).c FROM things").fetchone() == fields
        conn.rollback()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.tuples(HOSTILE, HOSTILE.filter(lambda t: len(t) >= 6)), min_size=1,
                       max_size=8, unique_by=lambda pair: pair[1])
       .filter(lambda pairs: not {a for a, _ in pairs} & {b for _, b in pairs}))  # fmt: skip
def test_a_kept_field_arrives_as_it_was_beside_a_transformed_one(
    databases: tuple[str, str], values: list[tuple[str, str]]
) -> None:
    """(A kept ``a`` equal to some original ``b`` would be a leak, rightly: none here.)"""
    source, target = databases
    with psycopg.connect(source, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM things")
        cur.executemany(
            "INSERT INTO things VALUES (%s, ROW(%s, %s, 'x')::trio)",
            [(i, a, b) for i, (a, b) in enumerate(values)],
        )

    def copy() -> list[tuple[Any, ...]]:
        with (
            psycopg.connect(source, autocommit=True) as src,
            psycopg.connect(target, autocommit=True) as dst,
            psycopg.connect(target, autocommit=True) as scratch,
        ):
            report = Anonymiser(src, dst, scratch, RULES, SALT, lambda: psycopg.connect(source))
            assert report.run().leak_hits == {}
        return _rows(target, "SELECT id, (v).a, (v).b, (v).c FROM things ORDER BY id")

    first = copy()
    assert [(i, a) for i, a, _, _ in first] == [(i, a) for i, (a, _) in enumerate(values)]
    originals = {b for _, b in values}
    assert all(b not in originals and c for _, _, b, c in first)
    assert copy() == first  # the same salt, the same rows
