"""A pull request's database cannot hold a seeding worker: each statement there is bounded.

Its CHECKs, index expressions and defaults are its author's. One that calls
``pg_sleep`` would otherwise keep the worker (and the environment's job
queue) busy for as long as it sleeps; with ``seed.statement_timeout`` the
run is cancelled, nothing is written, and the PR is told what to look at.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from envs.core.errors import OperationFailed
from envs.environments.seeding import seed_anonymised, seed_synthetic
from seeders.synthetic.recipe import Recipe
from tests.pg_server import PgServer
from tests.seeders.connections import databases, rows

SLOW = """
    CREATE FUNCTION slow(n int) RETURNS boolean LANGUAGE sql
        AS 'SELECT pg_sleep(3600) IS NULL OR n IS NOT NULL';
"""
BOUND = timedelta(seconds=1)


def test_a_sleeping_check_in_a_synthetic_seed_is_cancelled(pg_server: PgServer) -> None:
    url = pg_server.create_database("slow_synthetic")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            (SLOW + "CREATE TABLE t (id int PRIMARY KEY, n int CHECK (slow(n)));").encode()
        )
    with pytest.raises(OperationFailed) as info:
        seed_synthetic(url, Recipe(), statement_timeout=BOUND)
    assert "ran longer than seed.statement_timeout (1s)" in info.value.public
    assert "nothing was written" in info.value.public
    assert rows(url, "SELECT count(*) FROM t") == [(0,)]


def test_a_sleeping_check_in_an_anonymised_copy_is_cancelled(
    pg_server: PgServer, tmp_path: Path
) -> None:
    source, target = databases(
        pg_server, "slow_copy", "CREATE TABLE t (id int PRIMARY KEY, n int);",
        "INSERT INTO t SELECT g, g FROM generate_series(1, 10) g;",
    )  # fmt: skip
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute((SLOW + "ALTER TABLE t ADD CHECK (slow(n));").encode())
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"version": 1, "tables": {"t": {"id": "keep", "n": "keep"}}}))
    with pytest.raises(OperationFailed) as info:
        seed_anonymised(source, target, rules, "0123456789abcdef0123", statement_timeout=BOUND)
    assert "ran longer than seed.statement_timeout (1s)" in info.value.public
    assert "canceling statement due to statement timeout" in str(info.value)
    assert rows(target, "SELECT count(*) FROM t") == [(0,)]
