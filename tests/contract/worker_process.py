"""A worker in its own process, for the tests that kill one.

Run as ``python -m tests.contract.worker_process``.

Arguments: STATE_URL GITHUB_URL MARKER_DIR UP_SECONDS. The engine stand-in
writes MARKER_DIR/up-started-<pid> when an up begins and then takes
UP_SECONDS, so the test knows when the worker is mid-job.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from envs.config.spec_loading import parse_spec
from envs.core.clock import system_clock
from envs.environments.lifecycle import Lifecycle
from envs.github.client import PyGithubClient
from envs.store import open_store
from envs.worker.handlers import Handlers
from envs.worker.loop import Worker, WorkerOptions
from stacks.engine import StackOutputs
from stacks.spec import StackSpec
from tests.contract.fake_github import client_options
from tests.contract.service_harness import SPEC_TEXT
from tests.doubles import RecordingEngine

LEASE = timedelta(seconds=2)


class SlowEngine(RecordingEngine):
    def __init__(self, markers: Path, seconds: float) -> None:
        super().__init__()
        self.markers = markers
        self.seconds = seconds

    def up(self, stack: str, spec: StackSpec) -> StackOutputs:
        (self.markers / f"up-started-{os.getpid()}").write_text(stack)
        time.sleep(self.seconds)
        return super().up(stack, spec)


def main(state_url: str, github_url: str, markers: str, seconds: str) -> None:
    store = open_store(state_url)
    github = PyGithubClient.with_token("ghs_worker", client_options(github_url))
    engine = SlowEngine(Path(markers), float(seconds))
    lifecycle = Lifecycle(store, engine)  # type: ignore[arg-type]
    spec = parse_spec(SPEC_TEXT, "Hello-World.yaml")
    handlers = Handlers(store, lifecycle, github, lambda _: spec, system_clock)
    worker = Worker(store, handlers, WorkerOptions(lease=LEASE, poll_interval=0.05))
    worker.run(threading.Event())


if __name__ == "__main__":
    main(*sys.argv[1:5])
