"""A fresh database with the shop schema (tests/fixtures/sql/shop.sql) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.pg_server import PgServer
from tests.seeders.shop_data import SOURCE_ROWS

SHOP_SQL = (Path(__file__).resolve().parents[1] / "fixtures" / "sql" / "shop.sql").read_text()


@pytest.fixture
def shop(shop_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(shop_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def source(pg_server: PgServer, shop_url: str) -> str:
    with psycopg.connect(shop_url, autocommit=True) as conn:
        conn.execute(SOURCE_ROWS.encode())
    return shop_url


@pytest.fixture
def target(pg_server: PgServer, request: pytest.FixtureRequest) -> str:
    url = pg_server.create_database(f"target_{request.node.name[:40].lower()}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SHOP_SQL.encode())
    return url
