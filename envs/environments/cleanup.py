"""The cleanup cron: gather the inventory, plan (envs.environments.gc), act, report.

Keeps going after a failed action (one stuck stack must not shield the
rest) and reports every failure; the next run retries what is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from envs.core.clock import Clock
from envs.core.errors import PreviewError
from envs.core.jobs import JobKind, NewJob
from envs.core.model import (
    Environment,
    EnvironmentKey,
    OperationKind,
    OperationResult,
    parse_time,
)
from envs.core.payloads import Report
from envs.environments.gc import (
    EXPIRY_WARNING,
    GRACE,
    ActionKind,
    ClusterNamespace,
    GcAction,
    Inventory,
    plan,
    to_warn,
)
from envs.environments.lifecycle import Lifecycle
from stacks.cluster import Cluster
from stacks.errors import EngineError


@dataclass
class GcReport:
    planned: list[GcAction] = field(default_factory=list)
    done: list[GcAction] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # action description → error
    warned: list[str] = field(default_factory=list)  # PRs told their preview expires soon


def inventory(
    lifecycle: Lifecycle,
    cluster: Cluster,
    open_prs: Mapping[str, frozenset[int]] | None = None,
) -> Inventory:
    environments = tuple(lifecycle.store.environments())
    last: dict[EnvironmentKey, OperationKind] = {}
    unfinished: dict[EnvironmentKey, datetime] = {}
    for op in reversed(lifecycle.store.operations(limit=10_000)):  # oldest first
        key = EnvironmentKey(op.repository, op.pr_number)
        last[key] = op.kind
        if op.result is OperationResult.RUNNING:
            unfinished.setdefault(key, op.started_at)
    summaries = lifecycle.engine.stack_summaries()
    return Inventory(
        environments=environments,
        stacks=frozenset(s.name for s in summaries),
        locked_stacks=frozenset(s.name for s in summaries if s.update_in_progress),
        unfinished=unfinished,
        namespaces=tuple(
            ClusterNamespace(ns.name, ns.created_at, ns.terminating, ns.deleting_since)
            for ns in cluster.namespaces()
        ),
        last_operations=last,
        open_prs=open_prs,
        warned=_warned(lifecycle),
    )


def _warned(lifecycle: Lifecycle) -> dict[EnvironmentKey, datetime]:
    """The expiry each environment was last warned of, from the audit (newest first)."""
    found: dict[EnvironmentKey, datetime] = {}
    for entry in lifecycle.store.audit_entries(limit=10_000):
        if entry.action != WARNED or entry.repository is None or entry.pr_number is None:
            continue
        at = parse_time(entry.detail.get("expires_at"))
        key = EnvironmentKey(entry.repository, entry.pr_number)
        if at is not None and key not in found:
            found[key] = at
    return found


def collect(
    lifecycle: Lifecycle,
    cluster: Cluster,
    clock: Clock,
    dry_run: bool = False,
    open_prs: Mapping[str, frozenset[int]] | None = None,
    grace: timedelta = GRACE,
    warn_before: timedelta = EXPIRY_WARNING,
) -> GcReport:
    found = inventory(lifecycle, cluster, open_prs)
    report = GcReport(planned=plan(found, clock(), grace))
    expiring = to_warn(found, clock(), warn_before)
    report.warned = [f"{env.key} expires {env.expires_at:%Y-%m-%d %H:%M} UTC" for env in expiring]
    if dry_run:
        return report
    for env in expiring:
        _warn(lifecycle, env, clock)
    stacks = {env.key: env.stack for env in found.environments}
    for action in report.planned:
        try:
            if action.kind is ActionKind.CANCEL_LOCK:
                note = "abandoned: the process died; gc released its lock"
                lifecycle.release_abandoned(action.key, action.target, note)
            elif action.kind is ActionKind.DOWN and action.key is not None:
                absent = stacks.get(action.key) not in found.stacks
                lifecycle.down(action.key, "gc", action.reason.value, stack_absent=absent)
                _tell_the_pr(lifecycle, action.key, action.reason.value, clock)
            elif action.kind is ActionKind.DESTROY_STACK:
                lifecycle.engine.destroy(action.target, remove=True)
            elif action.kind is ActionKind.DELETE_NAMESPACE:
                cluster.delete_namespace(action.target)
            elif action.kind is ActionKind.RELEASE_FINALIZERS:
                cluster.release_finalizers(action.target)
            report.done.append(action)
            detail = {"target": action.target, "reason": action.reason.value}
            lifecycle.store.audit("gc", f"gc.{action.kind.value}", clock(), action.key, detail)
        except (PreviewError, EngineError, OSError) as exc:
            report.failed[action.describe()] = str(exc)[-500:]
    return report


def _tell_the_pr(lifecycle: Lifecycle, key: EnvironmentKey, reason: str, clock: Clock) -> None:
    """Queue the PR's report: its sticky comment says why, its deployment becomes inactive.

    gc may run where GitHub is not reachable (a CronJob without credentials);
    the worker posts it, retried through outages like any report.
    """
    note = f"removed by the cleanup ({reason}); `/preview up` brings it back"
    job = NewJob(JobKind.REPORT, key.repository, key.pr_number, Report(note=note).dump())
    lifecycle.store.queue.enqueue(job, clock())


WARNED = "gc.warn-expiry"


def _warn(lifecycle: Lifecycle, env: Environment, clock: Clock) -> None:
    """Tell the PR once, in a reply (a sticky edit notifies nobody), before its preview goes."""
    reply = (
        f"⏳ This preview expires at {env.expires_at:%Y-%m-%d %H:%M} UTC and will then be"
        " removed. `/preview extend 48h` keeps it longer."
    )
    payload = Report(reply=reply).dump()
    lifecycle.store.queue.enqueue(
        NewJob(JobKind.REPORT, env.repository, env.pr_number, payload), clock()
    )
    detail = {"expires_at": env.expires_at.isoformat()}
    lifecycle.store.audit("gc", WARNED, clock(), env.key, detail)
