"""Engine tests run ``previewctl`` as a user would, against the real Pulumi engine.

The engine comes from scripts/toolchain (built from Go modules). If it is
missing these tests fail with the command to run; they never skip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_runner import REPO_ROOT, Result, run_previewctl, toolchain_env

__all__ = ["IMAGE", "REPO_ROOT", "SHA", "Run"]

SHA = "1a2b3c4d" * 5
IMAGE = "ghcr.io/acme/shop@sha256:" + "ab" * 32

Run = Callable[..., Result]


@pytest.fixture
def previewctl(tmp_path: Path) -> Run:
    """Run previewctl in a scratch directory with its own state."""
    base = toolchain_env() | {"PREVIEW_STATE_DIR": str(tmp_path / "state")}

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
        return run_previewctl(args, tmp_path, base | (env or {}), timeout)

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
