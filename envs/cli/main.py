"""The ``previewctl`` command tree. Exit codes: 0 ok, 1 failed, 2 usage/config."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from envs.cli.context import Context, LazyContext, current_context
from envs.cli.metrics import metrics
from envs.cli.options import (
    json_option,
    pr_option,
    repo_option,
    repository_callback,
    sha_callback,
    spec_option,
)
from envs.cli.output import (
    emit_json,
    engine_line,
    environment_detail,
    environments_table,
    err,
    out,
)
from envs.cli.seed import seed
from envs.cli.service import service_commands
from envs.config.spec_loading import SpecInvalid, load_spec
from envs.core.clock import system_clock
from envs.core.errors import ConfigError, ExitCode, OperationFailed, PreviewError, exit_code
from envs.core.model import EnvironmentKey, EnvironmentStatus
from envs.core.spec import SeedMode, json_schema, parse_duration
from envs.environments.cleanup import collect
from envs.environments.lifecycle import UpRequest
from envs.environments.seed_run import seed_environment, seeded_since_created
from envs.environments.stack_plan import plan_preview
from envs.github.client import GitHubRejected, GitHubUnavailable
from envs.store import Store
from stacks.cluster import Cluster
from stacks.toolchain import ToolchainMissing


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Local state directory (PREVIEW_STATE_DIR, default ./.state).",
)
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None) -> None:
    """Preview environments for pull requests, on Kubernetes, with Pulumi."""
    overrides: dict[str, Any] = {"state_dir": state_dir} if state_dir else {}
    ctx.obj = LazyContext(overrides)


def _context() -> Context:
    return current_context()


# -- config ----------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Check and describe environment spec files."""


@config.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@json_option
def config_validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate spec FILES; print every problem; exit 2 if any."""
    problems: list[dict[str, Any]] = []
    for path in files:
        try:
            load_spec(path)
        except SpecInvalid as exc:
            problems += [
                {"file": p.file, "line": p.line, "path": p.path, "message": p.message}
                for p in exc.problems
            ]
            if not as_json:
                for problem in exc.problems:
                    err.print(
                        f"[red]error[/red] {escape(str(problem))}", markup=True, soft_wrap=True
                    )
        else:
            if not as_json:
                err.print(f"[green]ok[/green] {path}", markup=True)
    if as_json:
        emit_json({"valid": not problems, "problems": problems})
    if problems:
        raise SystemExit(ExitCode.USAGE)


@config.command("schema")
@click.option(
    "--out", "out_path", type=click.Path(path_type=Path, dir_okay=False), help="Write here."
)
def config_schema(out_path: Path | None) -> None:
    """Print the JSON Schema of spec files (for editor completion)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if out_path:
        out_path.write_text(text, encoding="utf-8")
        err.print(f"wrote {out_path}")
    else:
        sys.stdout.write(text)


# -- lifecycle -------------------------------------------------------------------


@cli.command()
@repo_option
@pr_option
@click.option("--branch", required=True, help="Head branch name (any characters).")
@click.option("--sha", "head_sha", required=True, callback=sha_callback, help="Head commit SHA.")
@click.option("--image", required=True, help="Promoted image: <repository>@sha256:<digest>.")
@spec_option
@click.option("--kubeconfig", help="Kubeconfig path (PREVIEW_KUBECONFIG).")
@click.option("--context", "kube_context", help="Kube context (PREVIEW_KUBE_CONTEXT).")
@click.option("--actor", default="cli", show_default=True, help="Recorded in the journal.")
@click.option(
    "--seed/--no-seed",
    default=True,
    show_default=True,
    help="Seed the database as the spec says once the environment is first ready, as the"
    " service does (never again on later updates).",
)
@json_option
def up(
    repository: str,
    pr_number: int,
    branch: str,
    head_sha: str,
    image: str,
    spec_path: Path | None,
    kubeconfig: str | None,
    kube_context: str | None,
    actor: str,
    seed: bool,
    as_json: bool,
) -> None:
    """Create or update the environment of one pull request."""
    ctx = _context()
    if kubeconfig or kube_context:
        ctx = Context(
            ctx.settings.model_copy(
                update={
                    k: v
                    for k, v in (("kubeconfig", kubeconfig), ("kube_context", kube_context))
                    if v
                }
            )
        )
    spec = ctx.spec_for(repository, spec_path)
    if ctx.settings.passphrase_is_default:
        err.print(
            "[bold yellow]warning:[/bold yellow] PREVIEW_PULUMI_PASSPHRASE is the built-in one:"
            " this preview's database password and its state's secrets are derived from a"
            " public value. Fine for a trial on this machine; set your own anywhere else.",
            markup=True,
        )
    lifecycle = ctx.lifecycle(None if as_json else engine_line)
    request = UpRequest(repository, pr_number, branch, head_sha, image, actor)
    if not as_json:
        err.print(f"[bold]up[/bold] {repository}#{pr_number} at {head_sha[:7]}", markup=True)
    env = lifecycle.up(request, spec)
    if not as_json:
        out.print(f"[green]ready[/green] {env.url}  (namespace {env.namespace})", markup=True)
    key = EnvironmentKey(repository, pr_number)
    if (
        seed
        and spec.seed.mode is not SeedMode.NONE
        and not seeded_since_created(lifecycle.store, key)
    ):
        if not as_json:
            err.print(f"[bold]seed[/bold] {spec.seed.mode.value}", markup=True)
        summary = seed_environment(
            lifecycle, ctx.seed_place(spec_path.parent if spec_path else None), spec, key,
            spec.seed.mode, actor,
        )  # fmt: skip
        if not as_json:
            out.print(f"[green]seeded[/green] {summary.headline()}", markup=True)
    if as_json:
        emit_json(lifecycle.store.require(key).to_json())


@cli.command()
@repo_option
@pr_option
@click.option("--actor", default="cli", show_default=True)
@json_option
def down(repository: str, pr_number: int, actor: str, as_json: bool) -> None:
    """Destroy the environment of one pull request (safe to repeat)."""
    lifecycle = _context().lifecycle(None if as_json else engine_line)
    env = lifecycle.down(EnvironmentKey(repository, pr_number), actor)
    if as_json:
        emit_json(env.to_json())
    else:
        out.print(
            f"[green]destroyed[/green] {repository}#{pr_number} ({env.namespace})", markup=True
        )


@cli.command()
@repo_option
@pr_option
@click.option("--actor", default="cli", show_default=True)
@json_option
def refresh(repository: str, pr_number: int, actor: str, as_json: bool) -> None:
    """Reconcile the environment's stack with what is in the cluster."""
    lifecycle = _context().lifecycle(None if as_json else engine_line)
    env = lifecycle.refresh(EnvironmentKey(repository, pr_number), actor)
    if as_json:
        emit_json(env.to_json())
    else:
        out.print(f"[green]refreshed[/green] {repository}#{pr_number}", markup=True)


@cli.command()
@repo_option
@pr_option
@click.option("--branch", required=True)
@click.option("--sha", "head_sha", required=True, callback=sha_callback)
@click.option("--image", required=True, help="<repository>@sha256:<digest>")
@spec_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for the YAML manifests.",
)
@json_option
def render(
    repository: str,
    pr_number: int,
    branch: str,
    head_sha: str,
    image: str,
    spec_path: Path | None,
    out_dir: Path,
    as_json: bool,
) -> None:
    """Write the environment's manifests with the real engine; needs no cluster.

    Secret values appear in plain text in the output, as in any rendered Secret.
    """
    ctx = _context()
    spec = ctx.spec_for(repository, spec_path)
    plan = plan_preview(
        spec,
        repository,
        pr_number,
        branch,
        head_sha,
        image,
        os.environ,
        ctx.placement,
    )
    engine = ctx.engine(None if as_json else engine_line)
    files = engine.render(plan.stack, out_dir)
    if as_json:
        emit_json(
            {
                "namespace": plan.names.namespace,
                "url": plan.stack.url,
                "files": [str(f) for f in files],
            }
        )
    else:
        out.print(f"[green]rendered[/green] {len(files)} manifests to {out_dir}", markup=True)


@cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include destroyed environments.")
@click.option(
    "--repo", "repository", callback=lambda c, p, v: repository_callback(c, p, v) if v else v
)
@json_option
def list_environments(show_all: bool, repository: str | None, as_json: bool) -> None:
    """List environments."""
    store = _context().store()
    statuses = None if show_all else [s for s in EnvironmentStatus if s.is_live]
    envs = store.environments(statuses, repository)
    if as_json:
        emit_json([env.to_json() for env in envs])
    elif envs:
        out.print(environments_table(envs))
    else:
        err.print("no environments")


@cli.command()
@repo_option
@pr_option
@json_option
def status(repository: str, pr_number: int, as_json: bool) -> None:
    """Show one environment and its recent operations."""
    store = _context().store()
    env = store.require(EnvironmentKey(repository, pr_number))
    operations = store.operations(repository, pr_number, limit=10)
    if as_json:
        emit_json(env.to_json() | {"operations": [op.to_json() for op in operations]})
    else:
        environment_detail(env, operations)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option(
    "--grace-minutes",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Spare namespaces and half-finished downs younger than this (one may be running).",
)
@click.option(
    "--keep-days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Forget finished jobs and webhook deliveries older than this.",
)
@click.option(
    "--warn-before",
    default="24h",
    show_default=True,
    help="Tell a PR once, this long before its preview expires (e.g. 24h, 2d).",
)
@json_option
def gc(dry_run: bool, grace_minutes: int, keep_days: int, warn_before: str, as_json: bool) -> None:
    """Remove what the webhooks missed: expired, half-destroyed and orphaned environments."""
    ctx = _context()
    s = ctx.settings
    s.require_own_passphrase("gc")
    lifecycle = ctx.lifecycle(None if as_json else engine_line)
    cluster = Cluster(s.kubeconfig, s.kube_context)
    grace = timedelta(minutes=grace_minutes)
    open_prs = _open_pull_requests(ctx, lifecycle.store)
    try:
        window = parse_duration(warn_before)
    except ValueError as exc:
        raise ConfigError(f"--warn-before: {exc}") from None
    report = collect(
        lifecycle, cluster, system_clock, dry_run, open_prs, grace=grace, warn_before=window
    )
    pruned = (0, 0)
    if not dry_run:
        pruned = lifecycle.store.queue.prune(system_clock() - timedelta(days=keep_days))
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "planned": [a.describe() for a in report.planned],
                "done": [a.describe() for a in report.done],
                "failed": report.failed,
                "warned": report.warned,
                "pruned": {"jobs": pruned[0], "deliveries": pruned[1]},
            }
        )
    else:
        verb = "would" if dry_run else "did"
        for action in report.planned:
            marker = "failed" if action.describe() in report.failed else verb
            out.print(f"{marker}: {action.describe()}", markup=False)
        if not report.planned:
            out.print("nothing to clean up")
        for warning in report.warned:
            out.print(f"{'would warn' if dry_run else 'warned'}: {warning}", markup=False)
        if any(pruned):
            out.print(
                f"forgot {pruned[0]} finished job(s) and {pruned[1]} delivery record(s) "
                f"older than {keep_days} days"
            )
    if report.failed:
        raise OperationFailed(
            "gc could not finish: " + "; ".join(f"{k}: {v}" for k, v in report.failed.items())
        )


def _open_pull_requests(ctx: Context, store: Store) -> dict[str, frozenset[int]] | None:
    """Open PR numbers per repository with a live environment: one listing per repository.

    Conditional requests against the ETags of the last run's listings: an
    unchanged listing (the usual case between two runs) costs no rate limit.
    Without GitHub credentials, or while GitHub is unavailable, closed PRs are
    left to the next run (TTL expiry still applies); everything else proceeds.
    """
    environments = store.environments()
    repositories = sorted({env.repository for env in environments if env.status.is_live})
    if not repositories:
        return {}
    try:
        github = ctx.github(store.github_cache)
    except ConfigError:
        err.print("gc: no GitHub credentials; environments of closed PRs are not detected")
        return None
    try:
        return {repo: frozenset(github.open_pull_numbers(repo)) for repo in repositories}
    except (GitHubUnavailable, GitHubRejected) as exc:
        err.print(f"gc: {escape(str(exc))}; closed PRs are checked on the next run", markup=True)
        return None


cli.add_command(seed)
cli.add_command(metrics)
for command in service_commands:
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every error to its exit code."""
    try:
        cli.main(args=argv, prog_name="previewctl", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        return ExitCode.FAILED
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except ToolchainMissing as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", markup=True)
        return ExitCode.FAILED
    except PreviewError as exc:
        label = "config error" if isinstance(exc, ConfigError) else "error"
        err.print(f"[red]{label}[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
        return exit_code(exc)
    except SystemExit as exc:
        return int(exc.code or 0)
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
