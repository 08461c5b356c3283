"""Human and JSON output for the CLI, in one place.

Human output and progress go to stderr through rich; ``--json`` writes one
JSON document to stdout and nothing else, so scripts can pipe it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from envs.core.model import Environment, Operation

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def engine_line(line: str) -> None:
    """Stream one line of Pulumi engine output as progress."""
    err.print(f"[dim]{line.rstrip()}[/dim]", markup=True, soft_wrap=True)


def environments_table(envs: Iterable[Environment]) -> Table:
    table = Table("ENVIRONMENT", "STATUS", "SHA", "URL", "EXPIRES", box=None, pad_edge=False)
    for env in envs:
        table.add_row(
            f"{env.repository}#{env.pr_number}",
            env.status.value,
            (env.head_sha or "")[:7],
            env.url or "",
            env.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
    return table


def environment_detail(env: Environment, operations: Iterable[Operation]) -> None:
    out.print(f"[bold]{env.repository}#{env.pr_number}[/bold]  {env.status.value}")
    for label, value in (
        ("branch", env.branch),
        ("namespace", env.namespace),
        ("url", env.url or "-"),
        ("head sha", env.head_sha or "-"),
        ("image", env.image or "-"),
        ("expires", env.expires_at.isoformat()),
        ("last error", env.last_error or "-"),
    ):
        out.print(f"  {label:<11}{value}", markup=False)
    table = Table("OP", "RESULT", "BY", "SHA", "STARTED", "SECONDS", box=None, pad_edge=False)
    for op in operations:
        table.add_row(
            op.kind.value,
            op.result.value + (f" ({op.reason.value})" if op.reason else ""),
            op.actor,
            (op.head_sha or "")[:7],
            op.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{op.duration_s:.1f}" if op.duration_s is not None else "",
        )
    out.print(table)
