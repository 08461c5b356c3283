"""``previewctl serve | promote | jobs | audit`` as processes, the way an operator runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli_runner import child_env, run_previewctl
from tests.contract.service_harness import REPO, image, pr_event
from tests.helpers import deliver, free_port

SECRET = "cli-webhook-secret"
TOKEN = "cli-promote-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        "PREVIEW_STATE_DIR": str(tmp_path / "state"),
        "PREVIEW_WEBHOOK_SECRET": SECRET,
        "PREVIEW_PROMOTE_TOKEN": TOKEN,
    }
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "envs.cli.main", "serve", "--workers", "0", "--port", str(port)],
            cwd=tmp_path,
            env=child_env(env),
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"serve did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.1)
    try:
        yield base, env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_serve_refuses_to_start_without_the_webhook_secret(tmp_path: Path) -> None:
    result = run_previewctl(("serve",), tmp_path, {"PREVIEW_STATE_DIR": str(tmp_path)})
    assert result.code == 2
    assert "PREVIEW_WEBHOOK_SECRET is not set" in result.stderr


def test_deliveries_and_promotions_show_up_in_jobs(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    response = deliver(base, SECRET.encode(), "pull_request", pr_event("opened"))
    assert response.status_code == 202

    sha = "9" * 40
    promote = ("promote", "--repo", REPO, "--sha", sha, "--image", image(9))
    remote = env | {"PREVIEW_SERVICE_URL": base}
    assert run_previewctl(promote, tmp_path, remote).code == 0
    wrong = run_previewctl(promote, tmp_path, remote | {"PREVIEW_PROMOTE_TOKEN": "nope"})
    assert wrong.code == 1
    assert "401" in wrong.stderr
    tag = run_previewctl(
        ("promote", "--repo", REPO, "--sha", sha, "--image", "ghcr.io/x/y:latest"), tmp_path, remote
    )
    assert tag.code == 2
    assert "not pinned by digest" in tag.stderr

    # Without PREVIEW_SERVICE_URL the promotion goes straight into the local store.
    local = ("promote", "--repo", REPO, "--sha", "8" * 40, "--image", image(8))
    assert run_previewctl(local, tmp_path, env).code == 0

    listed = run_previewctl(("jobs", "--json"), tmp_path, env)
    assert listed.code == 0
    kinds = sorted(job["kind"] for job in json.loads(listed.stdout))
    assert kinds == ["pr_event", "promote", "promote"]
    human = run_previewctl(("jobs",), tmp_path, env)
    assert "pr_event" in human.stdout
    assert "queued" in human.stdout

    audit = run_previewctl(("audit", "--json", "--repo", REPO), tmp_path, env)
    assert audit.code == 0
    assert json.loads(audit.stdout) == {"operations": [], "events": []}
