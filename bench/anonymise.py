"""Benchmark: anonymised copy vs a raw COPY TO | COPY FROM pipe, and memory vs size.

    .venv/bin/python bench/anonymise.py [--schema-rows 1120050] [--tables 100]
        [--table-rows 10000] [--sizes 1000000,4000000] [--repeat 3]

Starts its own PostgreSQL server (tests/pg_server.py) and copies from a source
to a target database on it, each way in a fresh Python process, twice: once as
a raw pipe (COPY TO → COPY FROM, rows passed through untouched, same
transaction and FK handling), once through the anonymiser (leak check
included). Each side runs ``--repeat`` times, alternately, and its median
time counts: one run on a shared 2-core machine varies by ±8 %.

Three workloads, each with its own ratio in the last line:

* **schema** (``ratio_vs_pipe``): an application's database, the seven tables of the shop
  schema (tests/fixtures/sql/shop.sql: customers, orders and their lines,
  shipments, stock, products, warehouses; FKs, a cycle, composite keys,
  citext, jsonb, arrays), ~1.1 M rows seeded synthetically, anonymised with
  the rules ``previewctl seed inspect`` writes for it. The pipe feeds the
  same loader plain ``COPY … TO STDOUT`` streams of every table, read in one
  snapshot.
* **many tables** (``many_tables``): ``--tables`` tables (100) of ``--table-rows`` rows (10 000)
  each, an e-mail and a name faked in every one and the rest kept: what a
  run's costs per table (queries, pools, the leak check's probes) add up to
  in a schema of many small tables, as apps have.
* **people** (``worst_case``, and memory): one 8-column table of which six
  columns are transformed (fake e-mail, masked name and phone, shifted date,
  noised amount, HMAC-hashed token; five keyed SHA-256 calls a row), at each
  of ``--sizes`` rows; each child reports its peak RSS, so the figures show
  whether memory grows with the table. Its pipe is TRUNCATE + COPY.

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seeders.anonymise.anonymiser import Anonymiser  # noqa: E402
from seeders.anonymise.readers import stream  # noqa: E402
from seeders.anonymise.rules import parse_rules  # noqa: E402
from seeders.copy.loader import load  # noqa: E402
from seeders.schema.introspect import introspect  # noqa: E402
from seeders.synthetic.generator import SyntheticConfig, SyntheticGenerator, seed_database  # noqa: E402
from tests.pg_server import running_server  # noqa: E402

SHOP_SQL = ROOT / "tests" / "fixtures" / "sql" / "shop.sql"
# Rows per table of the schema workload at its default size (1 120 050 in all);
# --schema-rows scales every count.
SHOP_ROWS = {
    "customers": 150_000,
    "warehouses": 50,
    "products": 20_000,
    "stock": 100_000,
    "orders": 300_000,
    "shipments": 150_000,
    "order_lines": 400_000,
}
# What `previewctl seed inspect` writes for the seeded shop schema, as a user
# starts from: every column ruled, personal data faked, the rest kept.
SHOP_RULES: dict[str, Any] = {
    "version": 1,
    "tables": {
        "public.customers": {
            "id": "keep",
            "email": {"fake": "email"},
            "full_name": {"fake": "name"},
            "phone": {"fake": "phone_number"},
            **dict.fromkeys(
                ("country", "referred_by", "tags", "profile", "created_at", "updated_at"), "keep"
            ),
        },
        "public.order_lines": dict.fromkeys(
            ("order_id", "line_no", "product_id", "quantity"), "keep"
        ),
        "public.orders": {
            **dict.fromkeys(
                ("id", "customer_id", "status", "placed_on", "last_shipment_id"), "keep"
            ),
            "shipping_address": {"fake": "street_address"},
        },
        "public.products": dict.fromkeys(("id", "sku", "name", "price", "weight_kg"), "keep"),
        "public.shipments": dict.fromkeys(
            ("id", "order_id", "warehouse_code", "product_id", "tracking"), "keep"
        ),
        "public.stock": dict.fromkeys(("warehouse_code", "product_id", "quantity"), "keep"),
        "public.warehouses": {"code": "keep", "city": {"fake": "city"}},
    },
}
SALT = b"bench-salt-0123456789"
MANY_TABLE = """
CREATE TABLE t{i} (
    id         bigint PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text NOT NULL,
    note       text,
    amount     numeric(10, 2),
    created_at timestamptz NOT NULL
);
"""
MANY_FILL = """
INSERT INTO t{i}
SELECT g, 'user' || g || '.t{i}@corp.example', 'Name ' || g || ' of t{i}', 'note ' || g % 50,
       g / 7.0, timestamptz '2024-01-01' + g * interval '1 minute'
FROM generate_series(1, {rows}) g;
"""


def many_rules(tables: int) -> dict[str, Any]:
    kept = dict.fromkeys(("id", "note", "amount", "created_at"), "keep")
    faked = {"email": {"fake": "email"}, "name": {"fake": "name"}}
    return {"version": 1, "tables": {f"public.t{i}": {**kept, **faked} for i in range(tables)}}


SCHEMA = """
CREATE TABLE people (
    id         bigint PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    full_name  text NOT NULL,
    phone      text,
    city       text NOT NULL,
    created_at timestamptz NOT NULL,
    balance    numeric(12, 2) NOT NULL,
    api_token  text NOT NULL
);
"""
FILL = """
INSERT INTO people
SELECT g, 'person' || g || '@corp.example', 'Person Number ' || g,
       '+1 555 ' || lpad(g::text, 7, '0'),
       (ARRAY['Berlin', 'Paris', 'Madrid', 'Rome'])[1 + g % 4],
       timestamptz '2024-01-01' + g * interval '1 second', (g % 100000) / 7.0,
       md5(g::text)
FROM generate_series(1, {rows}) g
"""
RULES = {
    "version": 1,
    "tables": {
        "people": {
            "id": "keep",
            "email": {"fake": "email"},
            "full_name": {"mask": {"keep_first": 1}},
            "phone": {"mask": {"keep_last": 2}},
            "city": "keep",
            "created_at": {"date_shift": {"max_days": 30}},
            "balance": {"noise": 0.05},
            "api_token": "hash",
        }
    },
}


def raw_pipe(source: str, target: str) -> float:
    with psycopg.connect(source) as src, psycopg.connect(target, autocommit=True) as dst:
        started = time.perf_counter()
        with dst.transaction():
            dst.execute("TRUNCATE people")
            with (
                src.cursor() as read, read.copy("COPY (SELECT * FROM people) TO STDOUT") as out,
                dst.cursor() as write, write.copy("COPY people FROM STDIN") as into,
            ):  # fmt: skip
                for data in out:
                    into.write(data)
        return time.perf_counter() - started


def schema_pipe(source: str, target: str) -> float:
    """Every table's rows as the source's COPY sends them, into the same loader as ours."""
    with psycopg.connect(source) as src, psycopg.connect(target, autocommit=True) as dst:
        src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        schema = introspect(dst)

        def columns(table: Any) -> list[str]:
            return [c.name for c in table.columns if c.writable]

        def rows(name: str) -> Any:
            table = schema.table(name)
            names = sql.SQL(", ").join(map(sql.Identifier, columns(table)))
            query = sql.SQL("COPY (SELECT {} FROM ONLY {}) TO STDOUT").format(
                names, sql.Identifier(table.schema, table.name)
            )
            return stream(src, query)

        started = time.perf_counter()
        load(dst, schema, [t.qualified for t in schema.tables], columns, rows)
        return time.perf_counter() - started


def ours(source: str, target: str, rules: dict[str, Any] = RULES) -> tuple[float, int]:
    with (
        psycopg.connect(source, autocommit=True) as src,
        psycopg.connect(target, autocommit=True) as dst,
        psycopg.connect(target, autocommit=True) as scratch,
    ):
        started = time.perf_counter()
        more = lambda: psycopg.connect(source, autocommit=True)  # noqa: E731
        report = Anonymiser(src, dst, scratch, parse_rules(rules), SALT, more).run()
        assert not report.leak_hits
        return time.perf_counter() - started, report.total_rows


def peak_rss_kib() -> int:
    """This process's own peak resident memory.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries it across fork and exec,
    so a child started by a parent that once held 200 MiB (the schema
    workload's seeding) would report 200 MiB however little it used. The
    ``VmHWM`` of /proc/self/status belongs to the address space exec made.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(source: str, target: str, rows: int, repeat: int, workload: str, tables: int) -> None:
    pipe, rules = {
        "schema": (schema_pipe, SHOP_RULES),
        "tables": (schema_pipe, many_rules(tables)),
        "people": (raw_pipe, RULES),
    }[workload]
    pipe_runs, ours_runs = [], []
    for _ in range(repeat):
        pipe_runs.append(pipe(source, target))
        ours_s, copied = ours(source, target, rules)
        assert copied == rows, (copied, rows)
        ours_runs.append(ours_s)
    peak_kib = peak_rss_kib()
    result = {
        "rows": rows,
        "pipe_s": statistics.median(pipe_runs),
        "ours_s": statistics.median(ours_runs),
        "pipe_runs": [round(s, 3) for s in pipe_runs],
        "ours_runs": [round(s, 3) for s in ours_runs],
        "peak_rss_mib": peak_kib // 1024,
    }
    print(json.dumps(result))


def run_child(
    source: str, target: str, rows: int, repeat: int, workload: str, tables: int = 0
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", source, target, str(rows)]
    command += ["--repeat", str(repeat), "--workload", workload, "--tables", str(tables)]
    out = subprocess.run(command, check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child for {rows} rows ({workload}) failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def fresh_pair(port: int, prefix: str, ddl: str | bytes) -> tuple[str, str]:
    """Source and target databases ``<prefix>_source`` and ``_target``, each given ``ddl``."""
    base = f"postgresql://postgres@127.0.0.1:{port}"
    urls = (f"{base}/{prefix}_source", f"{base}/{prefix}_target")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        for name in (f"{prefix}_source", f"{prefix}_target"):
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(ddl)
    return urls


def fill(url: str, statement: str | bytes) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)
        conn.execute("VACUUM ANALYZE")


def measure_schema(scale: float, port: int, repeat: int) -> dict[str, Any]:
    source, target = fresh_pair(port, "shop", SHOP_SQL.read_bytes())
    counts = {name: max(1, round(n * scale)) for name, n in SHOP_ROWS.items()}
    with psycopg.connect(source, autocommit=True) as conn:
        config = SyntheticConfig(rows=counts)
        seeded = seed_database(conn, SyntheticGenerator(introspect(conn), config)).total_rows
        conn.execute("VACUUM ANALYZE")
    return run_child(source, target, seeded, repeat, "schema")


def measure_tables(tables: int, rows: int, port: int, repeat: int) -> dict[str, Any]:
    ddl = "".join(MANY_TABLE.format(i=i) for i in range(tables))
    source, target = fresh_pair(port, "many", ddl)
    fill(source, "".join(MANY_FILL.format(i=i, rows=rows) for i in range(tables)))
    return run_child(source, target, tables * rows, repeat, "tables", tables)


def measure(size: int, port: int, repeat: int) -> dict[str, Any]:
    source, target = fresh_pair(port, "anon", SCHEMA)
    fill(source, FILL.format(rows=int(size)).encode())
    return run_child(source, target, size, repeat, "people")


def _line(label: str, run: dict[str, Any]) -> str:
    rows = run["rows"]
    return (
        f"{label}, {rows:>9,} rows: pipe {rows / run['pipe_s']:,.0f} rows/s, "
        f"ours {rows / run['ours_s']:,.0f} rows/s, ratio {run['pipe_s'] / run['ours_s']:.3f},"
        f" peak RSS {run['peak_rss_mib']} MiB"
        f" (runs: pipe {run['pipe_runs']} s, ours {run['ours_runs']} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema-rows", type=int, default=sum(SHOP_ROWS.values()),
                        help="rows of the schema workload, all tables together")  # fmt: skip
    parser.add_argument("--tables", type=int, default=100, help="tables of the many-tables"
                        " workload (0: none)")  # fmt: skip
    parser.add_argument("--table-rows", type=int, default=10_000, help="rows of each of them")
    parser.add_argument("--sizes", default="1000000,4000000", help="rows of the people workload")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (median)")
    parser.add_argument("--child", nargs=3, metavar=("SOURCE", "TARGET", "ROWS"))
    parser.add_argument("--workload", choices=("schema", "tables", "people"), default="people")
    args = parser.parse_args()
    if args.child:
        source, target, rows = args.child
        child(source, target, int(rows), args.repeat, args.workload, args.tables)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = []
    with running_server() as pg:
        scale = args.schema_rows / sum(SHOP_ROWS.values())
        schema = measure_schema(scale, pg.port, args.repeat)
        print(_line("schema (7 tables)", schema), file=sys.stderr)
        many = None
        if args.tables > 0:
            many = measure_tables(args.tables, args.table_rows, pg.port, args.repeat)
            print(_line(f"many tables ({args.tables})", many), file=sys.stderr)
        for size in sizes:
            run = measure(size, pg.port, args.repeat)
            runs.append(run)
            print(_line("people (worst case)", run), file=sys.stderr)
    first = runs[0]
    result = {
        "bench": "anonymise",
        "rows": schema["rows"],
        "repeat": args.repeat,
        "rows_per_s": round(schema["rows"] / schema["ours_s"]),
        "pipe_rows_per_s": round(schema["rows"] / schema["pipe_s"]),
        "ratio_vs_pipe": round(schema["pipe_s"] / schema["ours_s"], 3),
        "many_tables": many
        and {
            "tables": args.tables,
            "rows": many["rows"],
            "rows_per_s": round(many["rows"] / many["ours_s"]),
            "pipe_rows_per_s": round(many["rows"] / many["pipe_s"]),
            "ratio_vs_pipe": round(many["pipe_s"] / many["ours_s"], 3),
        },
        "worst_case": {
            "rows": first["rows"],
            "rows_per_s": round(first["rows"] / first["ours_s"]),
            "pipe_rows_per_s": round(first["rows"] / first["pipe_s"]),
            "ratio_vs_pipe": round(first["pipe_s"] / first["ours_s"], 3),
            "ratio_vs_pipe_by_size": {
                str(r["rows"]): round(r["pipe_s"] / r["ours_s"], 3) for r in runs
            },
        },
        "peak_rss_mib": {str(r["rows"]): r["peak_rss_mib"] for r in runs},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
