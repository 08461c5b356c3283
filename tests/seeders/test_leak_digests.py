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

from seeders import anonymise
from seeders.anonymise import _pipeline, unfold
from seeders.introspect import introspect
from seeders.readers import heap_blocks
from seeders.rules import parse_rules
from seeders.transform import Keyed

RULES = parse_rules(
    {
        "version": 1,
        "tables": {"people": {"id": "keep", "email": {"fake": "email"}, "note": {"mask": {}}}},
    }
)
SEED = 1234567


@pytest.fixture
def people(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, email text, note text)")
        # NULLs, values too short to fingerprint, and a tab and newline in a value.
        conn.execute(
            "INSERT INTO people SELECT g,"
            " CASE WHEN g % 7 = 0 THEN NULL ELSE 'p' || g || '@x.example' END,"
            " CASE WHEN g % 5 = 0 THEN 'short' WHEN g % 11 = 0 THEN E'tab\\there\\nline' || g"
            " ELSE repeat('n', 30) || g END FROM generate_series(1, 30000) g"
        )
    return pg_url


def fingerprints(conn: psycopg.Connection[Any], query: sql.Composed) -> tuple[Counter[bytes], int]:
    found: Counter[bytes] = Counter()
    rows = 0
    with conn.cursor() as cur, cur.copy(query) as copy:
        for row in copy:
            rows += 1
            found.update(unfold(bytes(row)).splitlines())
    return found, rows


def expected(conn: psycopg.Connection[Any], where: str) -> Counter[bytes]:
    values = conn.execute(
        f"SELECT hashtextextended(v, {SEED})::text FROM people,"
        f" LATERAL (VALUES (email), (note)) AS c(v) WHERE length(v) >= 6 AND ({where})"
    ).fetchall()
    return Counter(str(v[0]).encode() for v in values)


@pytest.mark.parametrize("where", [None, "id % 3 <> 0"])
def test_block_ranges_and_rows_stream_the_same_fingerprints(
    people: str, where: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anonymise, "DIGEST_BLOCKS", 16)  # several ranges for 30 000 rows
    with psycopg.connect(people, autocommit=True) as conn:
        table = introspect(conn).table("public.people")
        condition = sql.SQL(where) if where else None
        pipeline = _pipeline(table, RULES, Keyed.from_salt(b"salt"), SEED, condition)
        blocks = heap_blocks(conn, pipeline.source)
        assert blocks > 3 * 16
        by_range, range_rows = fingerprints(conn, pipeline.digests(blocks))
        by_row, row_rows = fingerprints(conn, pipeline.digests(None))
        assert by_range == by_row == expected(conn, where or "true")
        assert range_rows <= blocks // 16 + 1 < row_rows
