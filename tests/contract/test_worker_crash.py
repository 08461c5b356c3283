"""A worker SIGKILLed in the middle of a deploy loses nothing: the next one finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envs.core.clock import system_clock
from envs.core.jobs import JobKind, JobStatus, Promotion
from envs.core.model import EnvironmentKey, EnvironmentStatus
from envs.github.events import jobs_for
from envs.store import Store, open_store
from tests.contract.fake_github import FakeGitHub
from tests.contract.service_harness import PR, REPO, image, pr_event
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
KEY = EnvironmentKey(REPO, PR)
SHA = pr_event("opened")["pull_request"]["head"]["sha"]


@contextmanager
def worker_process(
    state_url: str, github_url: str, markers: Path, up_seconds: float
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.contract.worker_process",
            state_url,
            github_url,
            str(markers),
            str(up_seconds),
        ],
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_worker_killed_mid_deploy_is_replaced_and_the_deploy_completes(
    state_url: str, tmp_path: Path, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, github_url = fake_github
    store: Store = open_store(state_url)

    (job,) = jobs_for("pull_request", pr_event("opened"), "delivery-1").jobs
    store.queue.enqueue(job, system_clock())
    store.pull_requests.promote(Promotion(REPO, SHA, image(1), "ci", system_clock()))
    markers = tmp_path / "markers"
    markers.mkdir()

    with worker_process(state_url, github_url, markers, up_seconds=60) as doomed:
        wait_for(lambda: any(markers.iterdir()), "the first worker to start the up")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    (running,) = store.queue.jobs(status=JobStatus.RUNNING)
    assert running.kind is JobKind.DEPLOY
    assert store.require(KEY).status is EnvironmentStatus.PROVISIONING

    with worker_process(state_url, github_url, markers, up_seconds=0.5):
        wait_for(
            lambda: (
                store.require(KEY).status is EnvironmentStatus.READY
                and not store.queue.jobs(status=JobStatus.QUEUED)
                and not store.queue.jobs(status=JobStatus.RUNNING)
            ),
            "the second worker to finish the deploy and the report",
        )
    (deploy,) = [j for j in store.queue.jobs(limit=100) if j.kind is JobKind.DEPLOY]
    assert deploy.status is JobStatus.DONE
    assert deploy.attempts == 2
    assert len(list(markers.iterdir())) == 2  # one up per worker process
    (deployment,) = fake.deployments_of(REPO)
    assert deployment.statuses[-1]["state"] == "success"
    store.close()
