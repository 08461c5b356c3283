"""Benchmark: anonymised copy vs a raw COPY TO | COPY FROM pipe, and memory vs size.

    .venv/bin/python bench/anonymise.py [--sizes 1000000,4000000] [--repeat 3]

Starts its own PostgreSQL server (tests/pg_server.py). For each size, a fresh
Python process copies a table of that many rows from a source to a target
database twice, on the same server: once as a raw pipe (COPY TO → COPY FROM,
bytes passed through untouched, same transaction and FK handling), once
through the anonymiser (fake e-mail and name, masked phone, shifted dates,
noised amounts, hashed token, kept city; leak check included). Each child
reports its peak RSS, so the figures show whether memory grows with the
table. Each side runs ``--repeat`` times, alternately, and its median time
counts: one run on a shared 2-core machine varies by ±8 %. Prints one JSON
object as its last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seeders.anonymise import Anonymiser  # noqa: E402
from seeders.rules import parse_rules  # noqa: E402
from tests.pg_server import running_server  # noqa: E402

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


def ours(source: str, target: str) -> tuple[float, int]:
    with (
        psycopg.connect(source, autocommit=True) as src,
        psycopg.connect(target, autocommit=True) as dst,
        psycopg.connect(target, autocommit=True) as scratch,
    ):
        started = time.perf_counter()
        salt = b"bench-salt-0123456789"
        more = lambda: psycopg.connect(source, autocommit=True)  # noqa: E731
        report = Anonymiser(src, dst, scratch, parse_rules(RULES), salt, more).run()
        assert not report.leak_hits
        return time.perf_counter() - started, report.total_rows


def child(source: str, target: str, rows: int, repeat: int) -> None:
    pipe_runs, ours_runs = [], []
    for _ in range(repeat):
        pipe_runs.append(raw_pipe(source, target))
        ours_s, copied = ours(source, target)
        assert copied == rows
        ours_runs.append(ours_s)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "rows": rows,
        "pipe_s": statistics.median(pipe_runs),
        "ours_s": statistics.median(ours_runs),
        "pipe_runs": [round(s, 3) for s in pipe_runs],
        "ours_runs": [round(s, 3) for s in ours_runs],
        "peak_rss_mib": peak_kib // 1024,
    }
    print(json.dumps(result))


def measure(size: int, port: int, repeat: int) -> dict[str, Any]:
    base = f"postgresql://postgres@127.0.0.1:{port}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        for name in ("anon_source", "anon_target"):
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
    for name in ("anon_source", "anon_target"):
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            conn.execute(SCHEMA)
    with psycopg.connect(f"{base}/anon_source", autocommit=True) as conn:
        conn.execute(FILL.format(rows=int(size)).encode())
        conn.execute("VACUUM ANALYZE people")
    command = [sys.executable, __file__, "--child"]
    command += [f"{base}/anon_source", f"{base}/anon_target", str(size), "--repeat", str(repeat)]
    out = subprocess.run(command, check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child for {size} rows failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,4000000")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (median)")
    parser.add_argument("--child", nargs=3, metavar=("SOURCE", "TARGET", "ROWS"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.repeat)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = []
    with running_server() as pg:
        for size in sizes:
            run = measure(size, pg.port, args.repeat)
            runs.append(run)
            print(
                f"{size:>9,} rows: pipe {size / run['pipe_s']:,.0f} rows/s, "
                f"ours {size / run['ours_s']:,.0f} rows/s, peak RSS {run['peak_rss_mib']} MiB"
                f" (runs: pipe {run['pipe_runs']} s, ours {run['ours_runs']} s)",
                file=sys.stderr,
            )
    first = runs[0]
    result = {
        "bench": "anonymise",
        "rows": first["rows"],
        "repeat": args.repeat,
        "rows_per_s": round(first["rows"] / first["ours_s"]),
        "pipe_rows_per_s": round(first["rows"] / first["pipe_s"]),
        "ratio_vs_pipe": round(first["pipe_s"] / first["ours_s"], 3),
        "peak_rss_mib": {str(r["rows"]): r["peak_rss_mib"] for r in runs},
        "ratio_vs_pipe_by_size": {
            str(r["rows"]): round(r["pipe_s"] / r["ours_s"], 3) for r in runs
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
