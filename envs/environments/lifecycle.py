"""Environment lifecycle: up, down, status. Idempotent and resumable.

Every operation is journalled (who, what, which SHA and image, result,
timing) and audited before and after it touches the engine, so a crash
leaves a record that says what was in flight. Running ``up`` or ``down``
again after a failure converges; neither ever needs manual clean-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from envs.core.clock import Clock, system_clock
from envs.core.errors import ConfigError, NotFound, OperationFailed
from envs.core.model import (
    Environment,
    EnvironmentKey,
    EnvironmentStatus,
    FailureReason,
    Operation,
    OperationKind,
    OperationResult,
)
from envs.core.seed_summary import SeedSummary
from envs.core.spec import EnvironmentSpec
from envs.environments.stack_plan import Placement, plan_preview
from envs.store import Store
from stacks.errors import ClusterUnreachable, EngineError, RolloutNeverSucceeds, StackLocked

if TYPE_CHECKING:  # the engine (and Pulumi) load when a command builds one
    from stacks.engine import Engine


@dataclass(frozen=True)
class UpRequest:
    repository: str
    pr_number: int
    branch: str
    head_sha: str
    image: str  # repository@sha256:..., as promoted by CI
    actor: str
    runner: str | None = None  # the queue job running it ("job:<id>"), for lock recovery
    # Who asked, who promoted, who approved, who reviewed: kept in the deploy's audit entry.
    evidence: Mapping[str, object] = field(default_factory=dict)

    @property
    def key(self) -> EnvironmentKey:
        return EnvironmentKey(self.repository, self.pr_number)


class Lifecycle:
    """Drives one environment at a time through the store and the engine."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        clock: Clock = system_clock,
        environ: Mapping[str, str] | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self.environ = dict(environ or {})
        self.placement = placement or Placement()

    def up(self, request: UpRequest, spec: EnvironmentSpec) -> Environment:
        """Create or update the environment for the request's head SHA and image."""
        existing = self.store.get(request.key)
        live = existing if existing is not None and existing.status.is_live else None
        plan = plan_preview(
            spec,
            request.repository,
            request.pr_number,
            request.branch,
            request.head_sha,
            request.image,
            self.environ,
            self.placement,
            namespace=live.namespace if live else None,
        )
        image, names, stack_spec = plan.image, plan.names, plan.stack
        now = self.clock()
        env = Environment(
            repository=request.repository,
            pr_number=request.pr_number,
            branch=request.branch,
            namespace=names.namespace,
            stack=names.stack,
            status=EnvironmentStatus.PROVISIONING,
            created_at=live.created_at if live else now,
            updated_at=now,
            expires_at=now + spec.ttl,
            head_sha=request.head_sha,
            image=image.reference,
            url=existing.url if existing else None,
        )
        self.store.save(env)
        op = self.store.start_operation(
            request.key,
            OperationKind.UP,
            request.actor,
            now,
            request.head_sha,
            image.reference,
            runner=request.runner,
        )
        try:
            outputs = self.engine.up(names.stack, stack_spec)
        except EngineError as exc:
            raise self._failed(env, op, request.actor, exc, dict(request.evidence)) from exc
        ready = env.with_changes(
            status=EnvironmentStatus.READY,
            url=outputs.url,
            last_error=None,
            updated_at=self.clock(),
        )
        self.store.save(ready)
        self.store.finish_operation(op, OperationResult.SUCCEEDED, self.clock())
        self._audit(request.actor, "up.succeeded", ready, {**request.evidence, "url": outputs.url})
        return ready

    def down(
        self,
        key: EnvironmentKey,
        actor: str,
        reason: str = "requested",
        stack_absent: bool = False,
        runner: str | None = None,
    ) -> Environment:
        """Destroy the environment's stack and mark it destroyed; safe to repeat.

        ``stack_absent`` is for gc, which has just listed the backend: the engine
        call would only find out again that there is nothing to destroy.
        """
        env = self.store.get(key)
        if env is None:
            raise NotFound(f"no environment for {key}")
        now = self.clock()
        destroying = env.with_changes(status=EnvironmentStatus.DESTROYING, updated_at=now)
        self.store.save(destroying)
        op = self.store.start_operation(
            key, OperationKind.DOWN, actor, now, env.head_sha, env.image, runner=runner
        )
        try:
            if not stack_absent:
                self.engine.destroy(env.stack, remove=True, namespace=env.namespace)
        except EngineError as exc:
            raise self._failed(destroying, op, actor, exc, {"reason": reason}) from exc
        gone = destroying.with_changes(status=EnvironmentStatus.DESTROYED, updated_at=self.clock())
        self.store.save(gone)
        self.store.finish_operation(op, OperationResult.SUCCEEDED, self.clock())
        self._audit(actor, "down.succeeded", gone, {"reason": reason})
        return gone

    def refresh(self, key: EnvironmentKey, actor: str) -> Environment:
        """Bring the stack's state in line with the cluster (after manual edits or drift)."""
        env = self.store.require(key)
        now = self.clock()
        op = self.store.start_operation(key, OperationKind.REFRESH, actor, now, env.head_sha)
        try:
            self.engine.refresh(env.stack)
        except EngineError as exc:
            self.store.finish_operation(
                op, OperationResult.FAILED, self.clock(), str(exc)[-2000:], failure_reason(exc)
            )
            raise OperationFailed(f"refresh of {key} failed: {exc}") from exc
        self.store.finish_operation(op, OperationResult.SUCCEEDED, self.clock())
        self._audit(actor, "refresh.succeeded", env, {})
        return env

    def extend(self, key: EnvironmentKey, by: timedelta, actor: str) -> Environment:
        """Push the expiry back (from now if it already passed); journalled like any change."""
        env = self.store.require(key)
        if not env.status.is_live:
            raise OperationFailed(f"{key} has no live environment to extend")
        now = self.clock()
        op = self.store.start_operation(key, OperationKind.EXTEND, actor, now, env.head_sha)
        extended = env.with_changes(expires_at=max(env.expires_at, now) + by, updated_at=now)
        self.store.save(extended)
        self.store.finish_operation(op, OperationResult.SUCCEEDED, self.clock())
        self._audit(actor, "extend.succeeded", extended, {"by_s": int(by.total_seconds())})
        return extended

    def seed(
        self,
        key: EnvironmentKey,
        mode: str,
        run: Callable[[], SeedSummary],
        actor: str,
        runner: str | None = None,
    ) -> SeedSummary:
        """Fill a ready environment's database with ``run``; journalled and audited."""
        env = self.store.require(key)
        if env.status is not EnvironmentStatus.READY:
            raise OperationFailed(
                f"{key} is {env.status.value}; only a ready environment is seeded"
            )
        now = self.clock()
        op = self.store.start_operation(
            key, OperationKind.RESEED, actor, now, env.head_sha, env.image, runner=runner
        )
        try:
            summary = run()
        except (ConfigError, OperationFailed) as exc:
            message = str(exc)[-2000:]
            reason = (
                FailureReason.SEED_CONFIG if isinstance(exc, ConfigError) else FailureReason.SEED
            )
            self.store.finish_operation(op, OperationResult.FAILED, self.clock(), message, reason)
            self._audit(actor, "seed.failed", env, {"mode": mode, "error": message[-500:]})
            raise
        self.store.finish_operation(op, OperationResult.SUCCEEDED, self.clock())
        detail = {
            "mode": mode,
            "tables": len(summary.rows),
            "total_rows": summary.total_rows,
            "seconds": round(summary.seconds, 2),
        }
        self._audit(actor, "seed.succeeded", env, detail)
        return summary

    def release_abandoned(self, key: EnvironmentKey | None, stack: str, note: str) -> None:
        """Cancel the lock a dead process left on ``stack`` and close its journal entries.

        The caller has established that the process is dead (gc by age, the
        worker by the lease of the job that ran it).
        """
        try:
            self.engine.cancel(stack)
        except EngineError as exc:
            if "no update" not in str(exc).lower() and "not locked" not in str(exc).lower():
                raise
        if key is None:
            return
        for op in self.store.operations(key.repository, key.pr_number):
            if op.result is OperationResult.RUNNING:
                self.store.finish_operation(
                    op, OperationResult.FAILED, self.clock(), note, FailureReason.ABANDONED
                )

    def status(self, key: EnvironmentKey) -> Environment:
        return self.store.require(key)

    def _failed(
        self,
        env: Environment,
        op: Operation,
        actor: str,
        error: EngineError,
        detail: dict[str, object],
    ) -> OperationFailed:
        """Record a failed operation (environment, journal, audit); return the error to raise.

        The environment is left FAILED with the engine's reason, so a retry (or
        gc) knows where it stands.
        """
        message = str(error)[-2000:]
        failed = env.with_changes(
            status=EnvironmentStatus.FAILED, last_error=message, updated_at=self.clock()
        )
        self.store.save(failed)
        reason = failure_reason(error)
        self.store.finish_operation(op, OperationResult.FAILED, self.clock(), message, reason)
        self._audit(
            actor,
            f"{op.kind.value}.failed",
            failed,
            {**detail, "error": message[-500:], "reason": reason.value},
        )
        return OperationFailed(f"{op.kind.value} of {env.key} failed: {error}")

    def _audit(self, actor: str, action: str, env: Environment, detail: dict[str, object]) -> None:
        self.store.audit(
            actor,
            action,
            self.clock(),
            env.key,
            {"namespace": env.namespace, "sha": env.head_sha, "image": env.image, **detail},
        )


def failure_reason(error: EngineError) -> FailureReason:
    """The engine's failure, as a reason few enough to count (:class:`FailureReason`)."""
    if isinstance(error, RolloutNeverSucceeds):
        return FailureReason.ROLLOUT
    if isinstance(error, StackLocked):
        return FailureReason.LOCKED
    if isinstance(error, ClusterUnreachable):
        return FailureReason.CLUSTER
    return FailureReason.ENGINE
