"""`previewctl gc` removes every kind of debris, created for real in the local cluster."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from envs.core.jobs import JobKind, JobStatus, NewJob
from envs.core.model import EnvironmentKey, EnvironmentStatus
from envs.store import Store, open_store
from tests.cli_runner import REPO_ROOT
from tests.contract.fake_github import FakeGitHub
from tests.e2e.conftest import Cluster, previewctl

pytestmark = pytest.mark.e2e
SPEC = str(REPO_ROOT / "examples" / "minimal.yaml")
IMAGE = "ghcr.io/acme/shop@sha256:" + "5e" * 32


def up(cluster: Cluster, state: Path, pr: int) -> None:
    code, _, err = previewctl(
        cluster, state, "up", "--repo", "acme/shop", "--pr", str(pr), "--branch", "debris",
        "--sha", f"{pr:040d}", "--image", IMAGE, "--spec", SPEC,
    )  # fmt: skip
    assert code == 0, err


def exists(cluster: Cluster, namespace: str) -> bool:
    """True while the namespace exists and is not being deleted."""
    try:
        ns = cluster.core.read_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return bool(ns.status.phase != "Terminating")


def check_the_prs_are_told(store: Store) -> None:
    """The worker posts these: sticky comments, inactive deployments, one expiry warning."""
    notes = {
        job.pr_number: job.payload.get("note")
        for job in store.queue.jobs(status=JobStatus.QUEUED)
        if job.kind is JobKind.REPORT
    }
    assert notes == {
        51: "removed by the cleanup (expired); `/preview up` brings it back",
        53: "removed by the cleanup (half-destroyed); `/preview up` brings it back",
        54: None,
    }
    (warning,) = [j for j in store.queue.jobs(status=JobStatus.QUEUED) if j.pr_number == 54]
    assert "`/preview extend 48h` keeps it longer" in warning.payload["reply"]
    assert store.require(EnvironmentKey("acme/shop", 54)).status is EnvironmentStatus.READY


def test_gc_removes_expired_orphaned_and_half_destroyed_environments(
    cluster: Cluster, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    up(cluster, state, 51)  # will expire
    up(cluster, state, 52)  # will lose its record: an orphan stack
    cluster.core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name="pr-99-orphan", labels={"app.kubernetes.io/managed-by": "preview-envs"}
            )
        )
    )
    store = open_store(f"sqlite:///{state}/state.db")
    expired = store.require(EnvironmentKey("acme/shop", 51))
    store.save(expired.with_changes(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    store.delete(EnvironmentKey("acme/shop", 52))
    # A down that crashed after its stack was removed, before the record was updated.
    half = expired.with_changes(
        pr_number=53, namespace="pr-53-debris", stack="pr-53-debris",
        status=EnvironmentStatus.DESTROYING, updated_at=datetime.now(UTC) - timedelta(hours=1),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    store.save(half)
    # A preview that expires in two hours: its PR is told once, and it stays.
    soon = expired.with_changes(
        pr_number=54, namespace="pr-54-soon", stack="pr-54-soon",
        expires_at=datetime.now(UTC) + timedelta(hours=2),
    )  # fmt: skip
    store.save(soon)
    # Queue history older than gc's --keep-days (30): a finished job and its delivery.
    long_ago = datetime.now(UTC) - timedelta(days=60)
    history = NewJob(JobKind.REPORT, "acme/shop", 51)
    store.queue.accept_delivery("old-delivery", "pull_request", [history], long_ago)
    finished = store.queue.claim("gone-worker", long_ago, timedelta(seconds=30))
    assert finished is not None
    store.queue.finish(finished, "gone-worker", JobStatus.DONE, long_ago)
    store.close()

    code, out, err = previewctl(cluster, state, "gc", "--dry-run", "--grace-minutes", "0", "--json")
    assert code == 0, err
    planned = json.loads(out)["planned"]
    assert sorted(planned) == sorted(
        [
            "down pr-51-debris (acme/shop#51): expired",
            "down pr-53-debris (acme/shop#53): half-destroyed",
            "destroy-stack pr-52-debris: orphan-stack",
            "delete-namespace pr-99-orphan: orphan-namespace",
        ]
    )
    assert exists(cluster, "pr-51-debris"), "dry run changes nothing"
    assert exists(cluster, "pr-99-orphan")

    code, out, err = previewctl(cluster, state, "gc", "--grace-minutes", "0", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert sorted(report["done"]) == sorted(planned)
    assert report["failed"] == {}
    assert [w.split(" expires ")[0] for w in report["warned"]] == ["acme/shop#54"]
    assert report["pruned"] == {"jobs": 1, "deliveries": 1}
    for namespace in ("pr-51-debris", "pr-52-debris", "pr-99-orphan"):
        assert not exists(cluster, namespace), namespace
    store = open_store(f"sqlite:///{state}/state.db")
    assert store.require(EnvironmentKey("acme/shop", 51)).status is EnvironmentStatus.DESTROYED
    assert store.require(EnvironmentKey("acme/shop", 53)).status is EnvironmentStatus.DESTROYED
    assert {e.action for e in store.audit_entries()} >= {
        "gc.down",
        "gc.destroy-stack",
        "gc.delete-namespace",
    }
    check_the_prs_are_told(store)
    store.close()

    # The orphan namespace was deleted without waiting; it must finish on its own.
    deadline = time.monotonic() + 60
    while gone_or_terminating(cluster, "pr-99-orphan") == "terminating":
        assert time.monotonic() < deadline, "orphan namespace stuck in Terminating"
        time.sleep(1)
    code, out, err = previewctl(cluster, state, "gc", "--grace-minutes", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["planned"] == [], "a second run finds nothing"
    assert json.loads(out)["warned"] == [], "and warns nobody twice"


def test_gc_releases_a_namespace_stuck_terminating(cluster: Cluster, tmp_path: Path) -> None:
    name = "pr-98-stuck"
    labels = {"app.kubernetes.io/managed-by": "preview-envs"}
    cluster.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    # A finalizer whose controller does not exist holds the namespace forever.
    cluster.core.create_namespaced_config_map(
        name,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/never-released"])
        ),
    )
    cluster.core.delete_namespace(name)
    time.sleep(2)
    assert cluster.core.read_namespace(name).status.phase == "Terminating"

    state = tmp_path / "state"
    code, out, err = previewctl(cluster, state, "gc", "--grace-minutes", "0", "--json")
    assert code == 0, err
    assert "release-finalizers pr-98-stuck: stuck-terminating" in json.loads(out)["done"]
    deadline = time.monotonic() + 60
    while gone_or_terminating(cluster, name) == "terminating" and time.monotonic() < deadline:
        time.sleep(1)
    assert gone_or_terminating(cluster, name) == "gone", "still Terminating 60 s after release"


def test_gc_removes_environments_of_closed_prs_with_one_listing_per_repository(
    cluster: Cluster, tmp_path: Path, fake_github: tuple[FakeGitHub, str]
) -> None:
    """The webhook for a close was missed: GitHub's list of open PRs is the truth."""
    fake, github_url = fake_github
    state = tmp_path / "state"
    up(cluster, state, 61)
    up(cluster, state, 62)
    fake.pulls[("acme/shop", 62)] = {"state": "open", "head_sha": "6" * 40}
    fake.pulls[("acme/shop", 61)] = {"state": "closed", "head_sha": "6" * 40}
    github = {"PREVIEW_GITHUB_TOKEN": "ghs_gc", "PREVIEW_GITHUB_API_URL": github_url}

    code, out, err = previewctl(cluster, state, "gc", "--grace-minutes", "0", "--json", env=github)
    assert code == 0, err
    assert json.loads(out)["done"] == ["down pr-61-debris (acme/shop#61): pr-closed"]
    assert not exists(cluster, "pr-61-debris")
    assert exists(cluster, "pr-62-debris")
    listings = [r for r in fake.requests if r == ("GET", "/repos/acme/shop/pulls")]
    assert len(listings) == 1, "one listing for the repository, not one call per environment"
    # The next run asks with the listing's ETag: unchanged, GitHub answers 304 (no rate limit).
    code, out, err = previewctl(cluster, state, "gc", "--grace-minutes", "0", "--json", env=github)
    assert code == 0, err
    assert json.loads(out)["done"] == []
    assert fake.not_modified == ["/repos/acme/shop/pulls"]
    assert exists(cluster, "pr-62-debris")
    code, _, err = previewctl(cluster, state, "down", "--repo", "acme/shop", "--pr", "62")
    assert code == 0, err


def gone_or_terminating(cluster: Cluster, name: str) -> str:
    try:
        cluster.core.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return "gone"
        raise
    return "terminating"
