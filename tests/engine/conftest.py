"""Engine tests run ``previewctl`` as a user would, against the real Pulumi engine.

The engine comes from scripts/toolchain (built from Go modules). If it is
missing these tests fail with the command to run; they never skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks.toolchain import ToolchainMissing, locate

REPO_ROOT = Path(__file__).resolve().parents[2]
SHA = "1a2b3c4d" * 5
IMAGE = "ghcr.io/acme/shop@sha256:" + "ab" * 32


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


Run = Callable[..., Result]


@pytest.fixture(scope="session")
def toolchain_env() -> dict[str, str]:
    try:
        toolchain = locate(None, None)
    except ToolchainMissing as exc:
        pytest.fail(f"the Pulumi toolchain is missing; run scripts/toolchain first.\n{exc}")
    env = {"PREVIEW_PULUMI_HOME": str(toolchain.home)}
    if toolchain.root is not None:
        env["PREVIEW_PULUMI_ROOT"] = str(toolchain.root)
    return env


@pytest.fixture
def previewctl(tmp_path: Path, toolchain_env: dict[str, str]) -> Run:
    """Run previewctl in a scratch directory with its own state."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PREVIEW_")}
        full_env |= toolchain_env | {"PREVIEW_STATE_DIR": str(tmp_path / "state")} | (env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "envs.cli.main", *args],
            cwd=tmp_path,
            env=full_env | {"PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose API server refuses connections (port 1 on loopback)."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        """\
apiVersion: v1
kind: Config
clusters:
- {name: nowhere, cluster: {server: "https://127.0.0.1:1"}}
contexts:
- {name: nowhere, context: {cluster: nowhere, user: nobody}}
current-context: nowhere
users:
- {name: nobody, user: {token: not-a-token}}
"""
    )
    return path
