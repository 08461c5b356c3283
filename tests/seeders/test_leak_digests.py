"""The leak check's fingerprint stream: by heap-block range or by row, the same fingerprints.

Servers with TID range scans get one COPY row per DIGEST_BLOCKS heap blocks;
older ones one per source row. Either way every identifying original of six
characters or more, and nothing else, reaches the leak table.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seeders.anonymise import anonymiser
from seeders.anonymise.anonymiser import Fingerprint, _pipeline
from seeders.anonymise.readers import heap_blocks
from seeders.anonymise.rules import parse_rules
from seeders.anonymise.shapes import Shape, shapes
from seeders.anonymise.transform import Keyed
from seeders.copy.binary_copy import HEADER, TRAILER
from seeders.copy.binary_copy import fields as binary_fields
from seeders.schema.graph import Key
from seeders.schema.introspect import introspect
from seeders.schema.model import Schema, Table

RULES = parse_rules(
    {
        "version": 1,
        "tables": {
            "people": {"id": "keep", "email": {"fake": "email"}, "note": {"mask": {}}, "b": "keep"}
        },
    }
)
SEED = 1234567


@pytest.fixture
def people(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # A column named like the query's own block counter must not stand in for it.
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, email text, note text, b int)")
        # NULLs, values too short to fingerprint, and a tab and newline in a value.
        conn.execute(
            "INSERT INTO people SELECT g,"
            " CASE WHEN g % 7 = 0 THEN NULL ELSE 'p' || g || '@x.example' END,"
            " CASE WHEN g % 5 = 0 THEN 'short' WHEN g % 11 = 0 THEN E'tab\\there\\nline' || g"
            " ELSE repeat('n', 30) || g END, g % 3 FROM generate_series(1, 30000) g"
        )
    return pg_url


def fingerprints(conn: psycopg.Connection[Any], query: sql.Composed) -> tuple[Counter[int], int]:
    """The fingerprints a digest query streams (decoded), and how many COPY rows carried them."""
    found: Counter[int] = Counter()
    rows = 0
    with conn.cursor() as cur, cur.copy(query) as copy:
        for tuples in binary_fields(bytes(row) for row in copy):
            rows += 1
            for at in range(0, len(tuples), 14):
                assert tuples[at : at + 6] == b"\x00\x01\x00\x00\x00\x08"
                found[int.from_bytes(tuples[at + 6 : at + 14], "big", signed=True)] += 1
    return found, rows


def shaped(table: Table) -> dict[Key, Shape]:
    """The table's shapes when the target is the source's schema."""
    return shapes(Schema((table,)), Schema((table,)))


def expected(conn: psycopg.Connection[Any], where: str) -> Counter[int]:
    values = conn.execute(
        sql.SQL(
            "SELECT {} FROM people, LATERAL (VALUES (email), (note)) AS c(v)"
            " WHERE length(v) >= 6 AND ({})"
        ).format(Fingerprint(SEED).of(sql.SQL("v")), sql.SQL(where))
    ).fetchall()
    return Counter(int(v[0]) for v in values)


@pytest.mark.parametrize("where", [None, "id % 3 <> 0"])
def test_block_ranges_and_rows_stream_the_same_fingerprints(
    people: str, where: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anonymiser, "DIGEST_BLOCKS", 16)  # several ranges for 30 000 rows
    with psycopg.connect(people, autocommit=True) as conn:
        table = introspect(conn).table("public.people")
        condition = sql.SQL(where) if where else None
        pipeline = _pipeline(
            table, RULES, Keyed.from_salt(b"salt"), Fingerprint(SEED), shaped(table), condition
        )
        blocks = heap_blocks(conn, pipeline.source)
        assert blocks > 3 * 16
        by_range, range_rows = fingerprints(conn, pipeline.digests(blocks))
        by_row, row_rows = fingerprints(conn, pipeline.digests(None))
        assert by_range == by_row == expected(conn, where or "true")
        assert range_rows <= blocks // 16 + 1 < row_rows


def test_the_digest_stream_loads_into_the_leak_table_as_it_comes(people: str) -> None:
    """The source's tuples, between one header and one trailer, are the leak table's rows."""
    with psycopg.connect(people, autocommit=True) as conn:
        table = introspect(conn).table("public.people")
        pipeline = _pipeline(
            table, RULES, Keyed.from_salt(b"salt"), Fingerprint(SEED), shaped(table)
        )
        conn.execute("CREATE TEMP TABLE lk (d bigint NOT NULL)")
        with (
            conn.cursor() as read,
            read.copy(pipeline.digests(heap_blocks(conn, pipeline.source))) as rows,
        ):
            stream = [bytes(row) for row in rows]
        with conn.cursor() as cur, cur.copy("COPY lk FROM STDIN (FORMAT binary)") as into:
            into.write(HEADER)
            for tuples in binary_fields(stream):
                into.write(tuples)
            into.write(TRAILER)
        loaded = Counter(int(r[0]) for r in conn.execute("SELECT d FROM lk").fetchall())
        assert loaded == expected(conn, "true")


def test_binary_fields_reads_any_framing_of_the_stream() -> None:
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(4) + (3).to_bytes(4, "big") + b"ext"
    row = b"\x00\x01" + (5).to_bytes(4, "big") + b"hello"
    empty = b"\x00\x01" + bytes(4)
    assert list(binary_fields([header + row, empty, b"\xff\xff"])) == [b"hello", b""]
    assert list(binary_fields([header, row, b"\xff\xff"])) == [b"hello"]
    with pytest.raises(ValueError, match="after the binary COPY trailer"):
        list(binary_fields([header, b"\xff\xff", row]))
    assert list(binary_fields([header + b"\xff\xff"])) == []
    with pytest.raises(ValueError, match="not a binary COPY"):
        list(binary_fields([b"1\t2\n"]))
    with pytest.raises(ValueError, match="one column"):
        list(binary_fields([header + b"\x00\x02" + bytes(8)]))
