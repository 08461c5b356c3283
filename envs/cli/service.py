"""``previewctl serve | worker | jobs | audit | promote``: the GitHub-driven service."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from types import FrameType

import click
import httpx
import uvicorn
from rich.table import Table

from envs.cli.context import current_context
from envs.cli.options import (
    json_option,
    repo_option,
    repository_callback,
    sha_callback,
)
from envs.cli.output import emit_json, engine_line, err, out
from envs.config.settings import Settings
from envs.core.audit_chain import verify
from envs.core.clock import system_clock
from envs.core.errors import ConfigError, OperationFailed
from envs.core.jobs import JobStatus, Promotion
from envs.environments.images import PromotedImage
from envs.github.oidc import OidcPolicy, OidcVerifier
from envs.github.webhook_app import ServiceConfig, StorePool, create_app


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("PREVIEW_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(0, 32),
    help="Worker processes started alongside; 0 to run `previewctl worker` separately.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Receive GitHub webhooks on POST /webhook (and CI promotions on POST /promote)."""
    _logging()
    ctx = current_context()
    settings = ctx.settings
    settings.require_own_passphrase("serve")
    if settings.webhook_secret is None:
        raise ConfigError(
            "PREVIEW_WEBHOOK_SECRET is not set; use the secret configured on the GitHub "
            "webhook (or GitHub App)"
        )
    ctx.store().close()  # migrate once and fail fast on a bad state URL
    if workers:
        ctx.github()  # fail fast on missing credentials, before GitHub sends anything
    env = os.environ | {"PREVIEW_STATE_DIR": str(settings.state_dir.resolve())}
    children = [
        subprocess.Popen([sys.executable, "-m", "envs.cli.main", "worker"], env=env)
        for _ in range(workers)
    ]
    config = ServiceConfig(
        webhook_secret=settings.webhook_secret.get_secret_value().encode(),
        promote_token=(
            settings.promote_token.get_secret_value() if settings.promote_token else None
        ),
        oidc=_oidc(settings),
    )
    # SQLite has one writer at a time: several connections would only wait in SQLite's
    # sleeping busy handler (tens of ms), one shared connection queues them in order.
    pool_size = 1 if settings.resolved_state_url.startswith("sqlite") else 4
    app = create_app(StorePool(ctx.store, size=pool_size), config)
    err.print(f"serving on http://{host}:{port}/webhook with {workers} worker process(es)")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again to the handler
    # that was in place: the default one would end this process there, before `finally`
    # stops the workers (they were left running, reparented to init). Ours exits cleanly.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)


def _exit_on_signal(signum: int, _: FrameType | None) -> None:
    raise SystemExit(0)


def _oidc(settings: Settings) -> OidcVerifier | None:
    if not settings.promote_oidc_audience:
        return None
    workflows = tuple(w.strip() for w in settings.promote_oidc_workflows.split(",") if w.strip())
    return OidcVerifier(
        OidcPolicy(
            audience=settings.promote_oidc_audience,
            issuer=settings.promote_oidc_issuer,
            jwks_url=settings.promote_oidc_jwks_url,
            workflows=workflows,
        )
    )


@click.command()
@click.option("--drain", is_flag=True, help="Exit once no job is ready (for cron or CI).")
def worker(drain: bool) -> None:
    """Run queued jobs: deploys, teardowns, comment commands and PR reports."""
    _logging()
    ctx = current_context()
    ctx.settings.require_own_passphrase("worker")
    running = ctx.worker(engine_line)
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %s: finishing the current job", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if drain:
        while not stop.is_set() and running.run_once() is not None:
            pass
        return
    logging.getLogger(__name__).info("worker %s started", running.name)
    running.run(stop)


@click.command()
@click.option("--status", "status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def jobs(status: str | None, limit: int, as_json: bool) -> None:
    """List queued, running, failed and done jobs, newest first."""
    store = current_context().store()
    found = store.queue.jobs(status=JobStatus(status) if status else None, limit=limit)
    if as_json:
        emit_json([job.to_json() for job in found])
        return
    if not found:
        err.print("no jobs")
        return
    table = Table("id", "kind", "environment", "status", "tries", "updated (UTC)", "last error")
    for job in found:
        target = f"{job.repository}#{job.pr_number}" if job.pr_number else job.repository
        table.add_row(
            str(job.id),
            job.kind.value,
            target,
            job.status.value,
            f"{job.attempts}/{job.max_attempts}",
            f"{job.updated_at:%Y-%m-%d %H:%M:%S}",
            (job.last_error or "")[:80],
        )
    out.print(table)


@click.group(invoke_without_command=True)
@click.option(
    "--repo", "repository", callback=lambda c, p, v: repository_callback(c, p, v) if v else v
)
@click.option("--pr", "pr_number", type=click.IntRange(min=1))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@json_option
@click.pass_context
def audit(
    click_ctx: click.Context,
    repository: str | None,
    pr_number: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """The deployment history: who asked what, for which SHA and image, when, and the result.

    `audit verify` checks that the trail was not edited since it was written.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    store = current_context().store()
    operations = store.operations(repository, pr_number, limit=limit)
    if as_json:
        entries = store.audit_entries(repository, pr_number, limit=limit)
        emit_json(
            {
                "operations": [op.to_json() for op in operations],
                "events": [entry.to_json() for entry in entries],
            }
        )
        return
    if not operations:
        err.print("no operations recorded")
        return
    table = Table("started (UTC)", "environment", "op", "actor", "commit", "image", "result", "s")
    for op in operations:
        image = op.image.rsplit("@sha256:", 1)[-1][:12] if op.image else ""
        table.add_row(
            f"{op.started_at:%Y-%m-%d %H:%M:%S}",
            f"{op.repository}#{op.pr_number}",
            op.kind.value,
            op.actor,
            (op.head_sha or "")[:12],
            image,
            op.result.value + (f": {op.error[:60]}" if op.error else ""),
            f"{op.duration_s:.1f}" if op.duration_s is not None else "",
        )
    out.print(table)


EXPORT_FIELDS = (
    "id", "at", "actor", "action", "repository", "pr_number", "detail", "prev_hash", "hash",
)  # fmt: skip


@audit.command("export")
@click.option(
    "--since",
    required=True,
    callback=lambda c, p, v: _utc_bound(v, p.name, last_day=False),
    help="First day included (YYYY-MM-DD), or a UTC time (YYYY-MM-DDTHH:MM:SS).",
)
@click.option(
    "--until",
    required=True,
    callback=lambda c, p, v: _utc_bound(v, p.name, last_day=True),
    help="Last day included (YYYY-MM-DD), or a UTC time, excluded.",
)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option(
    "--repo", "repository", callback=lambda c, p, v: repository_callback(c, p, v) if v else v
)
@click.option("--pr", "pr_number", type=click.IntRange(min=1))
def audit_export(
    since: datetime,
    until: datetime,
    fmt: str,
    repository: str | None,
    pr_number: int | None,
) -> None:
    """Every audit entry in a date range, oldest first, as JSON Lines or CSV on stdout.

    Each entry keeps its hashes, so an export can be checked against
    `audit verify`'s head. Dates are UTC; a date alone as --until includes that day.
    """
    if until <= since:
        raise click.BadParameter("the range is empty: --until is not after --since")
    entries = current_context().store().audit_between(since, until, repository, pr_number)
    writer = csv.writer(sys.stdout) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_FIELDS)
    for entry in entries:
        row = entry.to_json() | {"prev_hash": entry.prev_hash}
        if writer is None:
            sys.stdout.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        else:
            row["detail"] = json.dumps(row["detail"], sort_keys=True, ensure_ascii=False)
            writer.writerow([row[field] for field in EXPORT_FIELDS])


def _utc_bound(value: str, name: str | None, last_day: bool) -> datetime:
    """A range bound in UTC; a date alone as the end means through that day."""
    for layout in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(value, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return parsed + timedelta(days=1) if last_day and len(value) == 10 else parsed
    raise click.BadParameter(f"--{name} {value!r}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS")


@audit.command("verify")
@json_option
def audit_verify(as_json: bool) -> None:
    """Check the audit trail's hash chain: exit 1 if an entry was edited, removed or inserted.

    Prints the chain's head: kept somewhere the store's writers cannot edit
    (a CI log), it shows on a later run whether entries were cut off the end.
    """
    verdict = verify(current_context().store().audit_chain())
    if as_json:
        emit_json(
            {
                "ok": verdict.ok,
                "checked": verdict.checked,
                "unchained": verdict.unchained,
                "head": verdict.head,
                "broken_at": verdict.broken_at,
                "why": verdict.why,
            }
        )
    else:
        older = verdict.unchained
        before = f" ({older} older entries predate the chain)" if older else ""
        out.print(f"{verdict.checked} entries chained{before}; head {verdict.head or '-'}")
    if not verdict.ok:
        raise OperationFailed(
            f"the audit trail was altered at entry {verdict.broken_at}: {verdict.why}"
        )


@click.command()
@repo_option
@click.option("--sha", "head_sha", required=True, callback=sha_callback, help="Commit CI built.")
@click.option("--image", required=True, help="What CI pushed: <repository>@sha256:<digest>.")
@click.option("--actor", default="ci", show_default=True, help="Recorded in the journal.")
def promote(repository: str, head_sha: str, image: str, actor: str) -> None:
    """Tell the service CI built IMAGE for SHA; open PRs at that SHA deploy it.

    With PREVIEW_SERVICE_URL set this calls the service (bearer
    PREVIEW_PROMOTE_TOKEN); otherwise it writes to the local state store.
    """
    PromotedImage.parse(image)
    settings = current_context().settings
    if settings.service_url:
        if settings.promote_token is None:
            raise ConfigError("PREVIEW_PROMOTE_TOKEN is not set; the service requires it")
        url = settings.service_url.rstrip("/") + "/promote"
        try:
            response = httpx.post(
                url,
                json={"repository": repository, "sha": head_sha, "image": image, "actor": actor},
                headers={"Authorization": f"Bearer {settings.promote_token.get_secret_value()}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise OperationFailed(f"cannot reach {url}: {exc}") from exc
        if response.status_code != 202:
            raise OperationFailed(f"{url} answered {response.status_code}: {response.text[:500]}")
    else:
        store = current_context().store()
        store.promote(Promotion(repository, head_sha, image, actor, system_clock()))
    err.print(f"promoted {image} for {repository}@{head_sha[:12]}")


service_commands = (serve, worker, jobs, audit, promote)
