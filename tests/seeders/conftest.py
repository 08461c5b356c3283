"""A fresh database with the shop schema (tests/fixtures/sql/shop.sql) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

SHOP_SQL = (Path(__file__).resolve().parents[1] / "fixtures" / "sql" / "shop.sql").read_text()


@pytest.fixture
def shop(shop_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(shop_url, autocommit=True) as conn:
        yield conn
