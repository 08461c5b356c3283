"""``previewctl metrics``: figures computed from the journal and the audit trail."""

from __future__ import annotations

from datetime import datetime

import click
from rich.table import Table

from envs.cli.context import current_context
from envs.cli.options import json_option
from envs.cli.output import emit_json, out
from envs.core.clock import system_clock
from envs.core.errors import ConfigError
from envs.core.model import OperationKind
from envs.core.spec import parse_duration
from envs.environments.dora import Dora, compute
from envs.store import Store

# Far above any window asked for; the journal is pruned by nothing, so bound the read.
MAX_OPERATIONS = 200_000


@click.group()
def metrics() -> None:
    """Delivery figures of the previews (docs/metrics.md gives each formula)."""


@metrics.command("dora")
@click.option("--repo", "repository", help="OWNER/NAME; default every repository.")
@click.option("--since", "since_text", default="30d", show_default=True, help="Window: 7d, 36h.")
@json_option
def dora(repository: str | None, since_text: str, as_json: bool) -> None:
    """Deployment frequency, lead time, change failure rate, time to restore, and more."""
    try:
        window = parse_duration(since_text)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    until = system_clock()
    figures = _figures(current_context().store(), repository, until - window, until)
    if as_json:
        emit_json(figures.to_json() | {"repository": repository})
        return
    table = Table(title=f"DORA figures of {repository or 'every repository'}, {since_text}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in _rows(figures):
        table.add_row(name, value)
    out.print(table)


def _figures(store: Store, repository: str | None, since: datetime, until: datetime) -> Dora:
    operations = store.operations(repository=repository, limit=MAX_OPERATIONS)
    promoted_at: dict[tuple[str, str], datetime] = {}
    for op in operations:
        if (
            op.kind is OperationKind.UP
            and op.head_sha
            and (op.repository, op.head_sha) not in promoted_at
        ):
            found = store.pull_requests.promotion(op.repository, op.head_sha)
            if found is not None:
                promoted_at[(op.repository, op.head_sha)] = found.promoted_at
    rolled_back = [
        (e.repository, e.pr_number, str(e.detail.get("from_sha")))
        for e in store.audit_entries(repository=repository, limit=MAX_OPERATIONS)
        if e.action == "deploy.rollback" and e.repository and e.pr_number is not None
    ]
    environments = store.environments(repository=repository)
    return compute(operations, promoted_at, rolled_back, environments, since, until)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _rows(f: Dora) -> list[tuple[str, str]]:
    rate = "—" if f.change_failure_rate is None else f"{f.change_failure_rate:.0%}"
    return [
        ("deployment frequency", f"{f.per_day:.2f}/day, {f.per_week:.1f}/week"),
        ("lead time, promotion → ready (p50 / p95)",
         f"{_duration(f.lead_time_p50_s)} / {_duration(f.lead_time_p95_s)}"),
        ("change failure rate", f"{rate} ({f.failed} failed, {f.rolled_back} rolled back"
         f" of {f.deployments})"),
        ("time to restore (p50)", _duration(f.time_to_restore_p50_s)),
        ("time to URL (p50 / p95)",
         f"{_duration(f.time_to_url_p50_s)} / {_duration(f.time_to_url_p95_s)}"),
        ("teardown (p50)", _duration(f.teardown_p50_s)),
        ("live previews", str(f.live_previews)),
        ("average lifetime", _duration(f.average_lifetime_s)),
    ]  # fmt: skip
