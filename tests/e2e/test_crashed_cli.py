"""`previewctl up` killed mid-update (CLI, engine and provider together): gc clears the lock.

The lock and the journal entry the dead process left are found by gc (its
operation is still "running"), the lock is cancelled and the entry closed,
and the next `up` converges. The worst-timed kill, between the file
backend's metadata write and its checkpoint rename, leaves an empty
metadata file that makes every read of the stack fail with "EOF"; the test
makes that outcome certain rather than a matter of timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envs.core.model import EnvironmentKey, EnvironmentStatus, OperationResult
from envs.store import open_store
from tests.cli_runner import (
    REPO_ROOT,
    TEST_PASSPHRASE,
    child_env,
    pulumi_backend,
    stack_file,
    toolchain_env,
)
from tests.e2e.conftest import Cluster, previewctl
from tests.helpers import kill_session, wait_for

pytestmark = pytest.mark.e2e
SPEC = str(REPO_ROOT / "examples" / "minimal.yaml")
IMAGE = "ghcr.io/acme/shop@sha256:" + "7a" * 32
NAMESPACE = "pr-71-crash"
UP = ("up", "--repo", "acme/shop", "--pr", "71", "--branch", "crash", "--sha", "7" * 40,
      "--image", IMAGE, "--spec", SPEC)  # fmt: skip


def namespace_exists(cluster: Cluster) -> bool:
    return bool(cluster.core.list_namespace(field_selector=f"metadata.name={NAMESPACE}").items)


def test_gc_releases_the_lock_of_a_killed_up_and_the_next_up_converges(
    cluster: Cluster, tmp_path: Path
) -> None:
    try:
        crash_and_recover(cluster, tmp_path)
    finally:  # a failed run must not leave its namespace to the next test on this cluster
        if namespace_exists(cluster):
            cluster.core.delete_namespace(NAMESPACE)


def crash_and_recover(cluster: Cluster, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = child_env(
        toolchain_env()
        | {
            "PREVIEW_STATE_DIR": str(state),
            "PREVIEW_KUBECONFIG": str(cluster.kubeconfig),
        }
    )
    log = tmp_path / "up.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "envs.cli.main", *UP],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    wait_for(lambda: namespace_exists(cluster), "the up to create the namespace", timeout=120)
    kill_session(proc.pid)  # the CLI, the Pulumi CLI and its provider, as a pod's end does
    proc.wait(timeout=30)

    locks = pulumi_backend(state) / ".pulumi" / "locks"
    assert list(locks.rglob("*.json")), "the killed update left its lock"
    sidecar = stack_file(state, NAMESPACE).with_suffix(".json.attrs")
    assert sidecar.is_file(), "the update had saved a checkpoint before it was killed"
    sidecar.write_bytes(b"")  # killed mid-write of the checkpoint's metadata
    code, out, err = previewctl(cluster, state, "gc", "--dry-run", "--grace-minutes", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["planned"] == [f"cancel-lock {NAMESPACE} (acme/shop#71): locked-stack"]
    code, out, err = previewctl(cluster, state, "gc", "--grace-minutes", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["done"] == [f"cancel-lock {NAMESPACE} (acme/shop#71): locked-stack"]
    assert not list(locks.rglob("*.json")), "gc released it"
    store = open_store(f"sqlite:///{state}/state.db")
    ops = store.operations("acme/shop", 71)
    assert all(op.result is not OperationResult.RUNNING for op in ops)
    store.close()

    code, out, err = previewctl(cluster, state, *UP, "--json")
    assert code == 0, err + log.read_text()[-2000:]
    assert json.loads(out)["status"] == EnvironmentStatus.READY.value
    code, out, err = previewctl(cluster, state, "gc", "--dry-run", "--grace-minutes", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["planned"] == []
    code, _, err = previewctl(cluster, state, "down", "--repo", "acme/shop", "--pr", "71")
    assert code == 0, err
    store = open_store(f"sqlite:///{state}/state.db")
    assert store.require(EnvironmentKey("acme/shop", 71)).status is EnvironmentStatus.DESTROYED
    store.close()


ADOPT_NAMESPACE = "pr-73-adopt"
ADOPT_UP = ("up", "--repo", "acme/shop", "--pr", "73", "--branch", "adopt", "--sha", "7" * 40,
            "--image", IMAGE, "--spec", SPEC)  # fmt: skip


def forget(state: Path, stack: str, resource_type: str) -> None:
    """Drop a resource (and what depends on it) from the stack's state, leaving the object.

    The state a kill leaves when it lands after the API server created an object and
    before the engine recorded it — made certain here instead of left to timing.
    """
    env = toolchain_env()
    pulumi = str(Path(env["PREVIEW_PULUMI_ROOT"]) / "bin" / "pulumi")
    settings = child_env(env) | {
        "PULUMI_HOME": env["PREVIEW_PULUMI_HOME"],
        "PULUMI_BACKEND_URL": pulumi_backend(state).as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": TEST_PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    qualified = f"organization/preview-envs/{stack}"
    exported = subprocess.run(
        [pulumi, "stack", "export", "--stack", qualified],
        cwd=state, env=settings, capture_output=True, text=True, check=True,
    )  # fmt: skip
    urn = next(
        r["urn"] for r in json.loads(exported.stdout)["deployment"]["resources"]
        if r["type"] == resource_type
    )  # fmt: skip
    subprocess.run(
        [pulumi, "state", "delete", "--stack", qualified, urn, "--yes", "--target-dependents"],
        cwd=state, env=settings, capture_output=True, text=True, check=True,
    )  # fmt: skip


def test_objects_a_killed_up_created_but_never_recorded_are_adopted(
    cluster: Cluster, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    try:
        code, _, err = previewctl(cluster, state, *ADOPT_UP)
        assert code == 0, err
        forget(state, ADOPT_NAMESPACE, "kubernetes:apps/v1:StatefulSet")
        # The StatefulSet (and what depends on it) exists, the stack no longer knows it:
        # the next up must take it over, not fail on the fields the API server defaulted.
        code, out, err = previewctl(cluster, state, *ADOPT_UP, "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == EnvironmentStatus.READY.value
        statefulset = cluster.apps.read_namespaced_stateful_set("postgres", ADOPT_NAMESPACE)
        managers = {entry.manager for entry in statefulset.metadata.managed_fields}
        assert "preview-envs" in managers
    finally:
        code, _, err = previewctl(cluster, state, "down", "--repo", "acme/shop", "--pr", "73")
        assert code == 0, err
