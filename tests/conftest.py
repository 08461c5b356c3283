"""Shared fixtures: a real PostgreSQL server per session, a fake GitHub, hypothesis profiles."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

from tests.contract.fake_github import FakeGitHub
from tests.http_server import serving
from tests.pg_server import PgServer, running_server
from tests.registry_server import Registry, running_registry

settings.register_profile("ci", max_examples=1000, deadline=None)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile("ci")

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.create_database(f"test_{next(_db_counter)}")


@pytest.fixture
def shop_url(pg_url: str) -> str:
    """A fresh database with the shop schema (tests/fixtures/sql/shop.sql)."""
    shop_sql = Path(__file__).parent / "fixtures" / "sql" / "shop.sql"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(shop_sql.read_bytes())
    return pg_url


@pytest.fixture
def fake_github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    with serving(fake.app()) as base:
        yield fake, base
    assert fake.violations == [], "requests GitHub's OpenAPI description rejects"


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """A real OCI registry on loopback (CNCF Distribution)."""
    with running_registry() as running:
        yield running
