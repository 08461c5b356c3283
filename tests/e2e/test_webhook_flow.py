"""The service end to end: GitHub webhooks in, a real environment on a real API server, the PR told.

``previewctl serve --workers 1`` runs as a process with the real Pulumi
engine against the local control plane; GitHub is the fake (every request
checked against GitHub's OpenAPI description); payloads are GitHub's own
examples, signed here.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes.client.rest import ApiException

from tests.cli_runner import REPO_ROOT, toolchain_env
from tests.contract.fake_github import Comment, FakeGitHub
from tests.contract.service_harness import PR, REPO, SPEC_TEXT, comment, pr_event
from tests.e2e.conftest import Cluster
from tests.helpers import deliver, free_port, wait_for

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret"
TOKEN = "e2e-promote-token"
SHA_1 = pr_event("opened")["pull_request"]["head"]["sha"]
SHA_2 = "3" * 40
IMAGE_1 = "ghcr.io/codertocat/hello-world@sha256:" + "1c" * 32
IMAGE_2 = "ghcr.io/codertocat/hello-world@sha256:" + "2d" * 32


@dataclass
class Running:
    base: str
    fake: FakeGitHub
    log: Path

    def deliver(self, event: str, payload: dict[str, Any]) -> None:
        response = deliver(self.base, SECRET.encode(), event, payload)
        assert response.status_code == 202, response.text

    def promote(self, sha: str, image: str) -> None:
        response = httpx.post(
            f"{self.base}/promote",
            json={"repository": REPO, "sha": sha, "image": image},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text

    def sticky(self) -> str:
        found = [c.body for c in self.fake.comments_on(REPO, PR) if "preview-envs:sticky" in c.body]
        return found[0] if found else ""

    def states(self) -> list[list[str]]:
        return [[s["state"] for s in d.statuses] for d in self.fake.deployments_of(REPO)]


@pytest.fixture
def service(
    cluster: Cluster, tmp_path: Path, fake_github: tuple[FakeGitHub, str]
) -> Iterator[Running]:
    fake, github_url = fake_github
    fake.roles[(REPO, "maintainer")] = "maintain"
    fake.roles[(REPO, "reader")] = "read"
    fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA_1}
    specs = tmp_path / "specs" / REPO.split("/")[0]
    specs.mkdir(parents=True)
    (specs / f"{REPO.split('/')[1]}.yaml").write_text(SPEC_TEXT)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREVIEW_")}
    env |= toolchain_env() | {
        "PYTHONPATH": str(REPO_ROOT),
        "PREVIEW_STATE_DIR": str(tmp_path / "state"),
        "PREVIEW_CONFIG_DIR": str(tmp_path / "specs"),
        "PREVIEW_KUBECONFIG": str(cluster.kubeconfig),
        "PREVIEW_WEBHOOK_SECRET": SECRET,
        "PREVIEW_PROMOTE_TOKEN": TOKEN,
        "PREVIEW_GITHUB_TOKEN": "ghs_e2e",
        "PREVIEW_GITHUB_API_URL": github_url,
        "PREVIEW_WORKER_LEASE_SECONDS": "30",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "envs.cli.main", "serve", "--workers", "1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stderr=sink,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz").status_code == 200
        except httpx.TransportError:
            assert proc.poll() is None, log.read_text()
            return False

    try:
        wait_for(ready, "the service to start", timeout=60)
        yield Running(base, fake, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def namespace_of(cluster: Cluster) -> str:
    found = cluster.core.list_namespace(label_selector=f"preview-envs.dev/pr={PR}").items
    assert len(found) == 1, [ns.metadata.name for ns in found]
    name: str = found[0].metadata.name
    return name


def test_pull_request_lifecycle_driven_by_github(cluster: Cluster, service: Running) -> None:
    fake = service.fake
    # Opened, then CI promotes the image: the URL appears on the PR.
    started = time.monotonic()
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA_1, IMAGE_1)
    wait_for(
        lambda: (
            "**ready**" in service.sticky() and service.states() == [["in_progress", "success"]]
        ),
        f"the URL on the PR (log: {service.log})",
    )
    to_url = time.monotonic() - started
    print(f"webhook to URL on the PR: {to_url:.1f}s")
    namespace = namespace_of(cluster)
    deployment = cluster.apps.read_namespaced_deployment("app", namespace)
    assert deployment.spec.template.spec.containers[0].image == IMAGE_1
    assert cluster.core.read_namespace(namespace).metadata.labels["preview-envs.dev/sha"] == SHA_1
    url = f"http://{namespace}.preview.example.test"
    assert url in service.sticky()
    (first,) = fake.deployments_of(REPO)
    assert first.statuses[-1]["state"] == "success"
    assert first.statuses[-1]["environment_url"] == url

    # A push: the new digest rolls out, the old deployment goes inactive.
    pushed = pr_event("synchronize", sha=SHA_2)
    fake.pulls[(REPO, PR)]["head_sha"] = SHA_2
    service.deliver("pull_request", pushed)
    service.promote(SHA_2, IMAGE_2)
    wait_for(
        lambda: (
            service.states() == [["in_progress", "success", "inactive"], ["in_progress", "success"]]
        ),
        "the second deployment",
    )
    deployment = cluster.apps.read_namespaced_deployment("app", namespace)
    assert deployment.spec.template.spec.containers[0].image == IMAGE_2

    # Commands: a reader is refused, a maintainer extends.
    fake.comments[11] = Comment(11, REPO, PR, "/preview destroy", "reader")
    service.deliver("issue_comment", comment("/preview destroy", "reader", comment_id=11))
    fake.comments[12] = Comment(12, REPO, PR, "/preview extend 48h", "maintainer")
    service.deliver("issue_comment", comment("/preview extend 48h", "maintainer", comment_id=12))
    wait_for(lambda: fake.comments[12].reactions == ["eyes", "rocket"], "the extend to finish")
    assert fake.comments[11].reactions == ["eyes", "confused"]
    assert cluster.core.read_namespace(namespace).status.phase == "Active"

    # Closed: namespace gone (not stuck Terminating), deployment inactive, comment updated.
    closed = copy.deepcopy(pr_event("closed"))
    closed["pull_request"]["head"]["sha"] = SHA_2
    started = time.monotonic()
    service.deliver("pull_request", closed)

    def namespace_gone() -> bool:
        try:
            cluster.core.read_namespace(namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(namespace_gone, "the namespace to be deleted")
    print(f"close to namespace gone: {time.monotonic() - started:.1f}s")
    wait_for(
        lambda: (
            "**destroyed**" in service.sticky()
            and all(states[-1] == "inactive" for states in service.states())
        ),
        "the PR to show the environment destroyed and the deployments inactive",
    )
