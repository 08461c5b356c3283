"""Runs ``previewctl`` in a child process, as a user or CI job would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks.toolchain import ToolchainMissing, locate

REPO_ROOT = Path(__file__).resolve().parents[1]


def pulumi_backend(state: Path) -> Path:
    """The file:// Pulumi backend previewctl keeps under its state directory by default."""
    return state / "pulumi"


def stack_file(state: Path, stack: str) -> Path:
    """A stack's checkpoint in that backend (project ``preview-envs``)."""
    return pulumi_backend(state) / ".pulumi" / "stacks" / "preview-envs" / f"{stack}.json"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def toolchain_env() -> dict[str, str]:
    """PREVIEW_PULUMI_* for the toolchain scripts/toolchain built; fails loudly if absent."""
    try:
        toolchain = locate(None, None)
    except ToolchainMissing as exc:
        pytest.fail(f"the Pulumi toolchain is missing; run scripts/toolchain first.\n{exc}")
    env = {"PREVIEW_PULUMI_HOME": str(toolchain.home)}
    if toolchain.root is not None:
        env["PREVIEW_PULUMI_ROOT"] = str(toolchain.root)
    return env


TEST_PASSPHRASE = "a-passphrase-of-the-tests-own"


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a ``previewctl`` child: ours without PREVIEW_*, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREVIEW_")}
    # serve, worker and gc refuse the built-in passphrase, as they should in production.
    own = {"PREVIEW_PULUMI_PASSPHRASE": TEST_PASSPHRASE}
    return env | {"PYTHONPATH": str(REPO_ROOT)} | own | dict(settings)


def run_previewctl(
    args: tuple[str, ...], cwd: Path, env: dict[str, str], timeout: float = 300
) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "envs.cli.main", *args],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
