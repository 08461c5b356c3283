"""The webhook service as a process against the local cluster, for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kubernetes.client import CoreV1Api

from tests.cli_runner import child_env, stack_file, toolchain_env
from tests.contract.fake_github import FakeGitHub
from tests.contract.service_harness import PR, REPO, SPEC_TEXT, pr_event
from tests.helpers import deliver, free_port, log_tail, wait_for

SECRET = "e2e-webhook-secret"
TOKEN = "e2e-promote-token"
SHA_1 = pr_event("opened")["pull_request"]["head"]["sha"]


@dataclass
class Running:
    base: str
    fake: FakeGitHub
    log: Path
    spec_path: Path  # read by the worker for every job: tests may change it between pushes
    state_dir: Path

    def stack_file(self, namespace: str) -> Path:
        """The stack's checkpoint in the service's file:// Pulumi backend."""
        return stack_file(self.state_dir, namespace)

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

    def until(self, condition: Callable[[], bool], what: str, timeout: float = 240) -> float:
        """``wait_for`` whose failure shows the deployments and the service's log."""

        def evidence() -> str:
            return f"deployment states: {self.states()}\n{log_tail(self.log)}"

        return wait_for(condition, what, timeout, evidence)


@contextmanager
def running_service(
    kubeconfig: Path,
    tmp_path: Path,
    fake: FakeGitHub,
    github_url: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Running]:
    """``previewctl serve --workers 1`` as a process, with specs in ``tmp_path/specs``."""
    fake.roles[(REPO, "maintainer")] = "maintain"
    fake.roles[(REPO, "reader")] = "read"
    fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA_1}
    specs = tmp_path / "specs" / REPO.split("/")[0]
    specs.mkdir(parents=True)
    spec_path = specs / f"{REPO.split('/')[1]}.yaml"
    spec_path.write_text(SPEC_TEXT)
    port = free_port()
    env = child_env(
        toolchain_env()
        | {
            "PREVIEW_STATE_DIR": str(tmp_path / "state"),
            "PREVIEW_CONFIG_DIR": str(tmp_path / "specs"),
            "PREVIEW_KUBECONFIG": str(kubeconfig),
            "PREVIEW_WEBHOOK_SECRET": SECRET,
            "PREVIEW_PROMOTE_TOKEN": TOKEN,
            "PREVIEW_GITHUB_TOKEN": "ghs_e2e",
            "PREVIEW_GITHUB_API_URL": github_url,
            "PREVIEW_WORKER_LEASE_SECONDS": "30",
        }
        | (extra_env or {})
    )
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
        yield Running(base, fake, log, spec_path, tmp_path / "state")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def namespace_of(core: CoreV1Api) -> str:
    """The one namespace of the PR the service tests drive."""
    found = core.list_namespace(label_selector=f"preview-envs.dev/pr={PR}").items
    assert len(found) == 1, [ns.metadata.name for ns in found]
    name: str = found[0].metadata.name
    return name
