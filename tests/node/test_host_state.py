"""The real node changes the host (an address, a bridge, iptables, ipsets, mounts,
cgroups, sysctls); after a crashed run a second ``up`` still works, and ``down``
leaves the host as it found it.

Runs before the other real-node tests (file order) and uses its own cluster name:
one real node per host, so it must not share the session's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.node.conftest import REPO_ROOT
from tests.node.real_node import NODE_IP

pytestmark = [pytest.mark.e2e, pytest.mark.real_node]

STATE = Path("/var/lib/preview-envs-node")
DAEMONS = ("kubelet", "kube-proxy", "kube-router", "containerd", "local-path-provisioner")


def sh(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout


def host_state() -> dict[str, object]:
    """What the node may leave behind, read from the host itself."""
    rules = [
        line
        for save in ("iptables-save", "ip6tables-save")
        for line in sh(save).splitlines()
        if "KUBE-" in line or "CNI-" in line
    ]
    return {
        "address on lo": NODE_IP in sh("ip", "addr", "show", "dev", "lo"),
        "bridge": "cni-preview0" in sh("ip", "link"),
        "iptables rules": len(rules),
        "ipsets": [s for s in sh("ipset", "list", "-n").split() if s.startswith("KUBE-")],
        "mounts": [m for m in sh("findmnt", "-rn", "-o", "TARGET").split() if "preview-envs" in m],
        "netns": sh("ip", "netns", "list").split(),
        "cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods*")],
        "state dir": STATE.exists(),
        "daemons": [d for d in DAEMONS if sh("pgrep", "-x", d[:15]).strip()],
        "ip_forward": sh("sysctl", "-n", "net.ipv4.ip_forward").strip(),
    }


def cluster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "cluster"), *args],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def test_up_after_a_crashed_run_works_and_down_restores_the_host() -> None:
    before = host_state()
    up = cluster("up", "crash-test", "--real")
    assert up.returncode == 0, up.stderr[-4000:]
    assert host_state()["address on lo"]
    # A crash: every daemon of the node killed at once, nothing cleaned up.
    for daemon in DAEMONS:
        subprocess.run(["pkill", "-9", "-x", daemon[:15]], check=False)
    subprocess.run(["pkill", "-9", "-f", "containerd-shim-runc-v2"], check=False)
    again = cluster("up", "crash-test", "--real")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "left from an earlier run" in again.stderr or "recreating" in again.stderr
    down = cluster("down", "crash-test")
    assert down.returncode == 0, down.stderr[-4000:]
    assert host_state() == before
