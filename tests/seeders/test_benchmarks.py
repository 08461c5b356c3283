"""The seeders' benchmarks stay one command each that ends in one JSON line.

Run at toy sizes: what is checked is the command and the figures' shape
(rows, ratios against the baseline measured in the same run, memory by
size), never a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def last_line(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_anonymise_reports_each_workloads_ratio_and_memory_by_size() -> None:
    result = last_line("anonymise.py", "--schema-rows", "3000", "--tables", "3",
                       "--table-rows", "300", "--sizes", "2000,4000", "--repeat", "1")  # fmt: skip
    assert result["bench"] == "anonymise"
    assert 2000 < result["rows"] <= 3000  # seven tables, scaled; keys may cap a few
    assert result["rows_per_s"] > 0
    assert result["pipe_rows_per_s"] > 0
    assert result["ratio_vs_pipe"] > 0
    many = result["many_tables"]
    assert many["tables"] == 3
    assert many["rows"] == 900
    assert many["ratio_vs_pipe"] > 0
    worst = result["worst_case"]
    assert worst["rows"] == 2000
    assert set(worst["ratio_vs_pipe_by_size"]) == {"2000", "4000"}
    assert set(result["peak_rss_mib"]) == {"2000", "4000"}


def test_seed_synthetic_reports_ratios_against_copy_and_naive() -> None:
    result = last_line("seed_synthetic.py", "--rows-per-table", "300", "--naive-rows", "50")
    assert result["bench"] == "seed_synthetic"
    assert result["rows"] == 6 * 300 + 50  # warehouses are 50 whatever the size
    assert result["ratio_vs_copy"] > 0
    assert result["ratio_vs_naive"] > 0
