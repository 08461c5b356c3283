"""A local cluster with a real node (``scripts/cluster up --real``) for the tests
where containers must really run: the preview's PostgreSQL, the demo app,
DNS, NetworkPolicy, volumes and the ingress controller.

Needs root (containerd, iptables, mounts), as CI has. Without root these tests
fail with the reason; deselect them with ``-m "not real_node"`` on a machine
where they cannot run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from tests.node.real_node import INGRESS, REGISTRY

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERD = "/run/preview-envs-node/containerd.sock"
VOLUMES = Path("/var/lib/preview-envs-node/volumes")
DEMO_APP = REPO_ROOT / "examples" / "demo-app"


@dataclass(frozen=True)
class RealCluster:
    kubeconfig: Path
    core: client.CoreV1Api
    apps: client.AppsV1Api
    kubectl: str  # the node's own, built with the control plane

    def get(self, host: str, path: str = "/api/rows") -> httpx.Response:
        """A request to a preview's URL through the node's ingress controller."""
        return httpx.get(f"{INGRESS}{path}", headers={"Host": host}, timeout=10)

    def exec_in(self, namespace: str, pod: str, command: list[str]) -> str:
        """Run ``command`` in ``pod``'s first container (kubectl exec); its output alone
        (``--quiet``: not kubectl's note on which container it chose)."""
        ran = subprocess.run(
            [self.kubectl, "--kubeconfig", str(self.kubeconfig), "-n", namespace, "exec",
             "--quiet", pod, "--", *command],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        return ran.stdout + ran.stderr

    def containers_of(self, namespace: str) -> list[str]:
        """The containerd containers the kubelet runs for ``namespace``'s pods."""
        listed = subprocess.run(
            ["ctr", "--address", CONTAINERD, "-n", "k8s.io", "containers", "ls", "-q",
             f'labels."io.kubernetes.pod.namespace"=={namespace}'],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        return listed.stdout.split()


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    if os.geteuid() != 0:
        pytest.fail(
            "the real-node tests need root (containerd, iptables, mounts): run them as root, "
            'or deselect them with -m "not real_node"'
        )
    name = "preview-real"
    log = tmp_path_factory.mktemp("real-cluster") / "cluster.log"
    with log.open("w") as sink:
        up = subprocess.run(
            [str(REPO_ROOT / "scripts" / "cluster"), "up", name, "--real"],
            stdout=subprocess.PIPE, stderr=sink, text=True, timeout=3600, check=False,
        )  # fmt: skip
    if up.returncode != 0:
        tail = log.read_text()[-6000:]
        pytest.fail(f"scripts/cluster up --real failed ({up.returncode}):\n{tail}")
    kubeconfig = Path(up.stdout.strip().splitlines()[-1])
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        kubectl = subprocess.run(
            [str(REPO_ROOT / "scripts" / "node"), "binary", "kubectl"],
            capture_output=True, text=True, check=True, timeout=600,
        ).stdout.strip()  # fmt: skip
        yield RealCluster(kubeconfig, client.CoreV1Api(api), client.AppsV1Api(api), kubectl)
    finally:
        subprocess.run(
            [str(REPO_ROOT / "scripts" / "cluster"), "down", name],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip


def demo_image(work: Path, version: str, broken: bool = False) -> str:
    """Build the demo app as CI would for a commit, push it, return ``repository@digest``.

    ``broken`` adds a migration that fails: the app exits at start (a crash loop).
    """
    source = work / f"demo-app-{version}"
    shutil.copytree(DEMO_APP, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "VERSION").write_text(f"{version}\n")
    if broken:
        (source / "migrations" / "0099_broken.sql").write_text(
            "ALTER TABLE customers ADD COLUMN nickname text NOT NULL DEFAULT;\n"
        )
    images = str(REPO_ROOT / "scripts" / "images")
    layout = subprocess.run(
        [images, "app", str(source)], capture_output=True, text=True, check=True, timeout=900
    ).stdout.strip()
    pushed = subprocess.run(
        [images, "push", layout, f"{REGISTRY}/demo-app:{version}"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return pushed.stdout.strip()
