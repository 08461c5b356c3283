"""Stand-ins at process boundaries, shared by the tests that need them.

The recording engine replaces the Pulumi engine (which tests/engine and
tests/e2e run for real) where a test must inject failures precisely.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stacks.engine import EngineError, StackLocked, StackOutputs
from stacks.errors import RolloutNeverSucceeds
from stacks.spec import StackSpec

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the worker catches it, nothing is cleaned up."""


class RecordingEngine:
    """Stand-in for stacks.engine.Engine: records calls, fails on request.

    ``kill_in_next_up`` leaves the stack locked, as a process killed mid-update
    does; later updates raise StackLocked until ``cancel``.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.specs: list[StackSpec] = []
        self.fail_next: str | None = None
        self.never_rolls_out: str | None = None  # every up fails with this rollout reason
        self.kill_in_next_up = False
        self.locked: set[str] = set()

    def cancel(self, stack: str) -> None:
        self.calls.append(("cancel", stack))
        self.locked.discard(stack)

    def up(self, stack: str, spec: StackSpec) -> StackOutputs:
        self.calls.append(("up", stack))
        self.specs.append(spec)
        if stack in self.locked:
            raise StackLocked(f"pulumi up of {stack}: the stack is locked by another update")
        if self.kill_in_next_up:
            self.kill_in_next_up = False
            self.locked.add(stack)
            raise WorkerKilled
        if self.fail_next:
            message, self.fail_next = self.fail_next, None
            raise EngineError(message)
        if self.never_rolls_out:
            raise RolloutNeverSucceeds(f"pulumi up of {stack}: {self.never_rolls_out}")
        return StackOutputs(url=spec.url, namespace=spec.namespace, database_service="db:5432")

    def refresh(self, stack: str) -> None:
        self.calls.append(("refresh", stack))
        if self.fail_next:
            message, self.fail_next = self.fail_next, None
            raise EngineError(message)

    def destroy(self, stack: str, remove: bool = True, namespace: str | None = None) -> bool:
        self.calls.append(("destroy", stack))
        if self.fail_next:
            message, self.fail_next = self.fail_next, None
            raise EngineError(message)
        return True


class Clock:
    """Ticks one second per reading, so every timestamp is distinct and ordered."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by
