"""Every previewctl command starts without loading the Pulumi SDK.

Pulumi and its Kubernetes provider take about a second to import; only
the commands that drive the engine (up, down, render, refresh, serve's
worker) need them, and they load them when they build an engine.
"""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import envs.cli.main
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"pulumi", "pulumi_kubernetes"}
                or m in {"stacks.engine", "stacks.branch_environment"})
print(",".join(loaded))
"""


def test_importing_the_cli_loads_no_pulumi_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], check=True, capture_output=True, text=True
    )  # a fresh interpreter: this one's test session may have loaded Pulumi already
    assert out.stdout.strip() == ""


def test_the_engine_still_exports_its_errors() -> None:
    """Code and scripts that catch them from stacks.engine keep working."""
    from stacks import engine, errors

    assert engine.EngineError is errors.EngineError
    assert engine.StackLocked is errors.StackLocked
