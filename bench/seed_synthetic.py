"""Benchmark: synthetic seeding vs a raw COPY of the same rows vs naive Faker + INSERT.

    .venv/bin/python bench/seed_synthetic.py [--rows-per-table 100000]

Starts its own PostgreSQL server (tests/pg_server.py), loads the seven-table
shop schema (FK chains, a self-reference, an FK cycle, composite keys, unique
constraints) and measures, in the same run and on the same server:

* ours: plan + generate + COPY + sequence reset + FK validation, end to end;
* copy: the same loader fed rows generated beforehand (pure load cost);
* naive: Faker called per value + executemany INSERT, on the customers table.

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seeders.copy.loader import load
from seeders.schema.introspect import introspect
from seeders.synthetic.generator import SyntheticConfig, SyntheticGenerator, seed_database
from tests.pg_server import running_server

SHOP_SQL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "sql" / "shop.sql"


def ours(conn: psycopg.Connection[Any], config: SyntheticConfig) -> tuple[int, float]:
    started = time.perf_counter()
    report = seed_database(conn, SyntheticGenerator(introspect(conn), config))
    return report.total_rows, time.perf_counter() - started


def raw_copy(conn: psycopg.Connection[Any], config: SyntheticConfig) -> tuple[int, float]:
    schema = introspect(conn)
    generator = SyntheticGenerator(schema, config)
    pregenerated = {name: list(generator.copy_chunks(name)) for name in generator.order.tables}
    started = time.perf_counter()
    report = load(
        conn, schema, generator.order.tables,
        lambda t: [c.name for c in generator.columns(t)], lambda name: pregenerated[name],
    )  # fmt: skip
    return report.total_rows, time.perf_counter() - started


def naive(conn: psycopg.Connection[Any], rows: int) -> tuple[int, float]:
    fake = Faker()
    fake.seed_instance(0)
    conn.execute("TRUNCATE customers CASCADE")
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO customers (email, full_name, phone, country, tags, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    f"{i}.{fake.email()}", fake.name()[:80], fake.phone_number()[:32],
                    fake.country_code(), [fake.word()], created, created,
                )
                for i in range(rows)
                for created in [fake.date_time_this_decade(tzinfo=None).astimezone()]
            ],
        )  # fmt: skip
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-table", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=5_000)
    args = parser.parse_args()
    config = SyntheticConfig(default_rows=args.rows_per_table, rows={"warehouses": 50})
    with running_server() as pg:
        url = pg.create_database("bench")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SHOP_SQL.read_bytes())
            ours(conn, SyntheticConfig(default_rows=1000))  # warm caches and Faker pools
            copy_rows, copy_s = raw_copy(conn, config)
            our_rows, our_s = ours(conn, config)
            naive_rows, naive_s = naive(conn, args.naive_rows)
    result = {
        "bench": "seed_synthetic",
        "tables": 7,
        "rows": our_rows,
        "rows_per_s": round(our_rows / our_s),
        "copy_rows_per_s": round(copy_rows / copy_s),
        "naive_rows_per_s": round(naive_rows / naive_s),
        "ratio_vs_copy": round((our_rows / our_s) / (copy_rows / copy_s), 3),
        "ratio_vs_naive": round((our_rows / our_s) / (naive_rows / naive_s), 1),
        "seconds": round(our_s, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
