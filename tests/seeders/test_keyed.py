"""The keyed functions the source server evaluates, checked against Python's hashlib.

The ``hash`` rule's pseudonyms are promised to be HMAC-SHA256 of the value's
UTF-8 text under the salt, so that anyone holding the salt can recompute one;
the other rules' keyed SHA-256 must be exactly the construction its proof is
about. Both must see the same bytes whatever the server's encoding, and
whatever a value holds (a backslash is no escape).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from seeders.anonymise.shapes import Shape
from seeders.anonymise.transform import PSEUDONYM, Keyed, Macs, _mask, _permuted
from tests.pg_server import PgServer

SALT = b"keyed-test-salt-0123456789"
VALUES = ["plain", "Grüße, Zoë", "tab\there", "back\\slash", "quote'd", "日本語", "x" * 300]


@pytest.fixture(scope="module")
def conn(pg_server: PgServer) -> Any:
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        yield conn


def evaluated(conn: Any, expression: sql.Composable) -> bytes:
    row = conn.execute(sql.SQL("SELECT {}").format(expression)).fetchone()
    return bytes(row[0])


@pytest.mark.parametrize("value", VALUES)
def test_the_pseudonym_is_hmac_sha256_of_the_value(conn: Any, value: str) -> None:
    keyed = Keyed.from_salt(SALT)
    expected = hmac.new(SALT, PSEUDONYM.encode() + b"\0" + value.encode(), "sha256").digest()
    assert evaluated(conn, keyed.mac(PSEUDONYM, sql.Literal(value))) == expected


def test_a_salt_longer_than_a_block_is_hashed_first_as_hmac_requires(conn: Any) -> None:
    salt = b"s" * 100
    expected = hmac.new(salt, b"hash\0value", "sha256").digest()
    assert evaluated(conn, Keyed.from_salt(salt).mac("hash", sql.Literal("value"))) == expected


@pytest.mark.parametrize("value", VALUES)
def test_the_prf_is_sha256_of_its_key_block_purpose_and_value(conn: Any, value: str) -> None:
    block = hashlib.sha512(b"preview-envs prf\0" + SALT).digest()
    expected = hashlib.sha256(block + b"noise\0" + value.encode()).digest()
    assert evaluated(conn, Keyed.from_salt(SALT).prf("noise", sql.Literal(value))) == expected


def test_the_prf_separates_purposes_and_salts(conn: Any) -> None:
    keyed = Keyed.from_salt(SALT)
    value = sql.Literal("same value")
    outputs = {
        evaluated(conn, keyed.prf("noise", value)),
        evaluated(conn, keyed.prf("date_shift", value)),
        evaluated(conn, Keyed.from_salt(b"another salt").prf("noise", value)),
        evaluated(conn, keyed.mac("noise", value)),
    }
    assert len(outputs) == 4


def test_a_latin1_server_gives_the_same_pseudonym_as_a_utf8_one(pg_server: PgServer) -> None:
    latin1_url = pg_server.create_database("keyed_latin1", encoding="LATIN1")
    value = "Grüße, Zoë"
    expected = hmac.new(SALT, b"hash\0" + value.encode(), "sha256").digest()
    with psycopg.connect(latin1_url, autocommit=True) as latin1:
        latin1.execute("SET client_encoding = 'UTF8'")
        keyed = Keyed.from_salt(SALT)
        assert evaluated(latin1, keyed.mac("hash", sql.Literal(value))) == expected
        block = hashlib.sha512(b"preview-envs prf\0" + SALT).digest()
        prf = hashlib.sha256(block + b"noise\0" + value.encode()).digest()
        assert evaluated(latin1, keyed.prf("noise", sql.Literal(value))) == prf


def feistel(value: int, bits: int, salt: bytes) -> int:
    """The integer pseudonym, written out in Python: a 4-round Feistel network of HMACs."""
    half, offset = bits // 2, 1 << (bits - 1)
    mask = (1 << half) - 1
    u = value + offset
    left, right = u >> half, u & mask
    for i in range(1, 5):
        mac = hmac.new(salt, f"hash:feistel:{i}\0{right}".encode(), "sha256").digest()
        left, right = right, left ^ (int.from_bytes(mac[:2], "big") & mask)
    return ((left << half) | right) - offset


@pytest.mark.parametrize(("type_name", "bits"), [("integer", 32), ("smallint", 16)])
def test_integer_pseudonyms_are_the_written_out_feistel_network(
    conn: Any, type_name: str, bits: int
) -> None:
    keyed = Keyed.from_salt(SALT)
    extremes = [-(1 << (bits - 1)), -1, 0, 1, 42, (1 << (bits - 1)) - 1]
    for value in extremes:
        literal = sql.SQL("({})::{}").format(sql.Literal(value), sql.SQL(type_name))
        row = conn.execute(
            sql.SQL("SELECT {}").format(_permuted(literal, bits, type_name, keyed))
        ).fetchone()
        assert row[0] == feistel(value, bits, SALT), value


def test_smallint_pseudonyms_permute_the_whole_range(conn: Any) -> None:
    expression = _permuted(sql.SQL("g::smallint"), 16, "smallint", Keyed.from_salt(SALT))
    rows = conn.execute(
        sql.SQL(
            "SELECT count(DISTINCT p), min(p), max(p), count(*) FILTER (WHERE p = g)"
            " FROM (SELECT g, {} AS p FROM generate_series(-32768, 32767) g) s"
        ).format(expression)
    ).fetchone()
    distinct, low, high, fixed = rows
    assert (distinct, low, high) == (65536, -32768, 32767), "a bijection of the range"
    assert fixed < 10, "a random permutation fixes about one point"


def _masked(value: str, first: int, last: int) -> str:
    """A mask as the rules promise it: kept ends, the middle starred, no character twice."""
    if len(value) <= first:
        return value
    starred = "*" * max(len(value) - first - last, 0)
    return value[:first] + starred + (value[max(first, len(value) - last) :] if last else "")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=8
    ),
    first=st.integers(0, 4),
    last=st.integers(0, 4),
)
def test_a_mask_keeps_its_ends_whatever_the_length_of_the_value(
    conn: Any, value: str, first: int, last: int
) -> None:
    """Short values too: a value no longer than its kept ends comes back whole, never doubled."""
    expression = _mask(
        Shape(),
        sql.Literal(value),
        {"keep_first": first, "keep_last": last},
        Macs(Keyed.from_salt(SALT)),
    )
    row = conn.execute(sql.SQL("SELECT {}").format(expression)).fetchone()
    assert row is not None
    assert row[0] == _masked(value, first, last)
