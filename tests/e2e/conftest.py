"""A real control plane for the end-to-end tests (scripts/cluster).

Built from Go modules and started once per session on loopback; the tests
then run ``previewctl`` against it with the real Pulumi engine.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from stacks.cluster import MANAGED_BY
from tests.cli_runner import run_previewctl, toolchain_env
from tests.contract.fake_github import FakeGitHub
from tests.e2e.cluster_infra import ClusterInfra
from tests.e2e.service import Running, running_service
from tests.pg_server import PgServer

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    core: client.CoreV1Api
    apps: client.AppsV1Api
    networking: client.NetworkingV1Api


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    name = f"preview-e2e-{os.getpid()}"
    log = tmp_path_factory.mktemp("cluster") / "cluster.log"
    with log.open("w") as sink:
        up = subprocess.run(
            [str(REPO_ROOT / "scripts" / "cluster"), "up", name],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            timeout=3600,
            check=False,
        )
    if up.returncode != 0:
        pytest.fail(f"scripts/cluster up failed ({up.returncode}):\n{log.read_text()[-4000:]}")
    kubeconfig = Path(up.stdout.strip().splitlines()[-1])
    api = config.new_client_from_config(config_file=str(kubeconfig))
    infra = ClusterInfra(str(kubeconfig)).start()
    try:
        yield Cluster(
            kubeconfig=kubeconfig,
            core=client.CoreV1Api(api),
            apps=client.AppsV1Api(api),
            networking=client.NetworkingV1Api(api),
        )
    finally:
        infra.stop()
        subprocess.run(
            [str(REPO_ROOT / "scripts" / "cluster"), "down", name],
            capture_output=True,
            timeout=300,
            check=False,
        )


def previewctl(
    cluster: Cluster, state: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run previewctl against the local cluster with its state in ``state``."""
    env = (
        toolchain_env()
        | (env or {})
        | {
            "PREVIEW_STATE_DIR": str(state),
            "PREVIEW_KUBECONFIG": str(cluster.kubeconfig),
        }
    )
    result = run_previewctl(args, state.parent, env, timeout=900)
    return result.code, result.stdout, result.stderr


@pytest.fixture
def service(
    cluster: Cluster, tmp_path: Path, fake_github: tuple[FakeGitHub, str], pg_server: PgServer
) -> Iterator[Running]:
    """The webhook service with one worker against the local cluster, GitHub faked.

    kwok's pods run nothing, so an environment's PostgreSQL does not exist: the
    worker reaches databases on the tests' real PostgreSQL server instead
    (PREVIEW_DATABASE_ADDRESS), where a test that seeds prepares one.
    """
    fake, github_url = fake_github
    address = {"PREVIEW_DATABASE_ADDRESS": f"127.0.0.1:{pg_server.port}"}
    before = _managed_namespaces(cluster)
    with running_service(cluster.kubeconfig, tmp_path, fake, github_url, address) as running:
        yield running
    # A test that failed before its environment was destroyed must not leave it to the
    # next: the cleanup cron's test counts every namespace it did not make as an orphan.
    _delete_namespaces(cluster, _managed_namespaces(cluster) - before)


def _managed_namespaces(cluster: Cluster) -> set[str]:
    listed = cluster.core.list_namespace(label_selector=MANAGED_BY).items
    return {ns.metadata.name for ns in listed if ns.metadata is not None and ns.metadata.name}


def _delete_namespaces(cluster: Cluster, names: set[str], timeout_s: float = 120) -> None:
    for name in names:
        try:
            cluster.core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    deadline = time.monotonic() + timeout_s
    while names & _managed_namespaces(cluster) and time.monotonic() < deadline:
        time.sleep(1)
