"""A worker SIGKILLed mid-up and mid-destroy, with the real engine: the next one converges.

Every process of the worker's session is killed (worker, Pulumi CLI,
provider), as when a pod is evicted. Nothing may be left behind: no lock, no orphan, no
half-destroyed environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes.client.rest import ApiException

from envs.core.clock import system_clock
from envs.core.jobs import JobStatus, Promotion
from envs.core.model import EnvironmentKey, EnvironmentStatus, OperationKind
from envs.github.events import jobs_for
from envs.store import Store, open_store
from tests.cli_runner import child_env, pulumi_backend, stack_file, toolchain_env
from tests.contract.fake_github import FakeGitHub
from tests.contract.service_harness import PR, REPO, SPEC_TEXT, image, pr_event
from tests.e2e.conftest import Cluster, previewctl
from tests.helpers import kill_session, log_tail, wait_for

pytestmark = pytest.mark.e2e
KEY = EnvironmentKey(REPO, PR)
SHA = pr_event("opened")["pull_request"]["head"]["sha"]


class Workers:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(self.procs)}.log"
        with log.open("w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "envs.cli.main", "worker"],
                env=self.env,
                stderr=sink,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        kill_session(proc.pid)
        proc.wait(timeout=30)

    def until(self, condition: Callable[[], bool], what: str, timeout: float = 240) -> float:
        """``wait_for`` whose failure shows the newest worker's log."""
        newest = self.logs / f"worker-{len(self.procs) - 1}.log"
        return wait_for(condition, what, timeout, lambda: log_tail(newest))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)


@pytest.fixture
def setup(
    cluster: Cluster, tmp_path: Path, fake_github: tuple[FakeGitHub, str]
) -> Iterator[tuple[Workers, Store, Path]]:
    _, github_url = fake_github
    specs = tmp_path / "specs" / REPO.split("/")[0]
    specs.mkdir(parents=True)
    (specs / f"{REPO.split('/')[1]}.yaml").write_text(SPEC_TEXT)
    state = tmp_path / "state"
    env = child_env(
        toolchain_env()
        | {
            "PREVIEW_STATE_DIR": str(state),
            "PREVIEW_CONFIG_DIR": str(tmp_path / "specs"),
            "PREVIEW_KUBECONFIG": str(cluster.kubeconfig),
            "PREVIEW_GITHUB_TOKEN": "ghs_kill",
            "PREVIEW_GITHUB_API_URL": github_url,
            "PREVIEW_WORKER_LEASE_SECONDS": "10",
        }
    )
    store = open_store(f"sqlite:///{state}/state.db")
    workers = Workers(env, tmp_path)
    try:
        yield workers, store, state
    finally:
        workers.stop_all()
        store.close()


def namespace_state(cluster: Cluster) -> str:
    found = cluster.core.list_namespace(label_selector=f"preview-envs.dev/pr={PR}").items
    if not found:
        return "absent"
    return "terminating" if found[0].metadata.deletion_timestamp else "present"


def abandoned(store: Store, kind: OperationKind) -> int:
    """Journal entries of the given kind closed because their worker died."""
    return sum(
        1
        for op in store.operations(REPO, PR)
        if op.kind is kind and (op.error or "").startswith("abandoned: its worker died")
    )


def stack_locked(state: Path, stack: str) -> bool:
    """Whether a Pulumi update holds the stack's lock in the file backend."""
    locks = pulumi_backend(state) / ".pulumi" / "locks"
    return any(stack in lock.parts for lock in locks.rglob("*.json"))


def test_killed_mid_up_and_mid_destroy_the_next_worker_converges(
    cluster: Cluster, setup: tuple[Workers, Store, Path]
) -> None:
    workers, store, state = setup
    store.pull_requests.promote(Promotion(REPO, SHA, image(1), "ci", system_clock()))
    store.queue.accept_delivery("kill-1", "pull_request", jobs_for(
        "pull_request", pr_event("opened"), "kill-1").jobs, system_clock())  # fmt: skip

    doomed = workers.start()
    workers.until(lambda: namespace_state(cluster) == "present", "the up to create the namespace")
    workers.kill(doomed)
    assert store.require(KEY).status is EnvironmentStatus.PROVISIONING
    assert store.queue.jobs(status=JobStatus.RUNNING), "the deploy is still leased"

    workers.start()
    workers.until(lambda: store.require(KEY).status is EnvironmentStatus.READY, "the deploy")
    namespace = store.require(KEY).namespace
    assert abandoned(store, OperationKind.UP) == 1, "the killed up's lock was found and released"
    deployment = cluster.apps.read_namespaced_deployment("app", namespace)
    assert deployment.spec.template.spec.containers[0].image == image(1)
    code, out, err = previewctl(cluster, state, "gc", "--dry-run", "--grace-minutes", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["planned"] == [], "nothing orphaned, no lock left"
    workers.stop_all()

    closed = jobs_for("pull_request", pr_event("closed"), "kill-2").jobs
    store.queue.accept_delivery("kill-2", "pull_request", closed, system_clock())
    doomed = workers.start()
    # Under way: the engine holds the stack's lock (its destroy waits for the namespace,
    # which the teardown deleted first, to be gone).
    workers.until(
        lambda: (
            store.require(KEY).status is EnvironmentStatus.DESTROYING
            and namespace_state(cluster) != "present"
            and stack_locked(state, namespace)
        ),
        "the destroy to be under way",
        timeout=120,
    )
    workers.kill(doomed)

    workers.start()
    workers.until(lambda: store.require(KEY).status is EnvironmentStatus.DESTROYED, "the destroy")
    workers.until(lambda: namespace_state(cluster) == "absent", "the namespace to go")
    assert abandoned(store, OperationKind.DOWN) == 1, "the killed destroy's lock was released"
    assert not stack_file(state, namespace).exists()
    code, out, err = previewctl(cluster, state, "gc", "--dry-run", "--grace-minutes", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["planned"] == []
    with pytest.raises(ApiException):
        cluster.core.read_namespace(namespace)
