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
from psycopg import sql

from seeders.transform import PSEUDONYM, Keyed
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
