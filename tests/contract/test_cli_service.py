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

from envs.config.settings import DEFAULT_PASSPHRASE
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


@pytest.mark.parametrize("command", [("serve",), ("worker", "--drain"), ("gc", "--dry-run")])
def test_long_lived_commands_refuse_the_built_in_passphrase(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    """Every preview's database password derives from it, and the README prints it."""
    settings = {
        "PREVIEW_STATE_DIR": str(tmp_path),
        "PREVIEW_WEBHOOK_SECRET": SECRET,
        "PREVIEW_PULUMI_PASSPHRASE": DEFAULT_PASSPHRASE,
    }
    result = run_previewctl(command, tmp_path, settings)
    assert result.code == 2, result.stderr
    said = " ".join(result.stderr.split())
    assert f"{command[0]} refuses to run with the built-in PREVIEW_PULUMI_PASSPHRASE" in said
    assert "openssl rand -hex 32" in said
    assert not (tmp_path / "state.db").exists(), "it stopped before touching anything"


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


def _children(pid: int) -> set[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in found}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_serve_stopped_with_sigterm_stops_its_workers(tmp_path: Path) -> None:
    """Kubernetes stops a pod with SIGTERM; a worker left behind would run jobs unsupervised."""
    port = free_port()
    settings = {
        "PREVIEW_STATE_DIR": str(tmp_path / "state"),
        "PREVIEW_WEBHOOK_SECRET": SECRET,
        "PREVIEW_GITHUB_TOKEN": "ghs_unused",
    }
    command = [sys.executable, "-m", "envs.cli.main", "serve", "--workers", "2"]
    proc = subprocess.Popen([*command, "--port", str(port)], cwd=tmp_path, env=child_env(settings))
    deadline = time.monotonic() + 60
    while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert len(workers) == 2
    while time.monotonic() < deadline:  # serving: the signal must find uvicorn running
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "no worker outlives serve"
