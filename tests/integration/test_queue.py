"""The durable queue on both backends: dedupe, supersede, leases, per-environment serialisation."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from envs.core.jobs import JobKind, JobStatus, NewJob, Promotion, PullRequest
from envs.core.model import EnvironmentKey
from envs.store import Store, open_store

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def deploy(pr: int, sha: str = "a" * 40) -> NewJob:
    return NewJob(JobKind.DEPLOY, "acme/shop", pr, {"sha": sha})


def test_a_redelivery_is_accepted_once(store: Store) -> None:
    first = store.queue.accept_delivery("d-1", "pull_request", [deploy(1)], T0)
    again = store.queue.accept_delivery("d-1", "pull_request", [deploy(1)], T0)
    assert first is not None
    assert len(first) == 1
    assert again is None
    assert len(store.queue.jobs()) == 1


def test_delivery_and_its_jobs_are_atomic(store: Store) -> None:
    unserialisable = NewJob(JobKind.DEPLOY, "acme/shop", 1, {"x": object()})
    with pytest.raises(TypeError):
        store.queue.accept_delivery("d-2", "pull_request", [deploy(1), unserialisable], T0)
    # Neither the delivery nor the first job survived: a retry by GitHub is accepted.
    assert store.queue.jobs() == []
    assert store.queue.accept_delivery("d-2", "pull_request", [deploy(1)], T0) is not None


def test_a_newer_push_supersedes_a_queued_deploy(store: Store) -> None:
    old = store.queue.enqueue(deploy(7, "1" * 40), T0)
    other_pr = store.queue.enqueue(deploy(8, "1" * 40), T0)
    new = store.queue.enqueue(deploy(7, "2" * 40), T0)
    statuses = {job.id: job.status for job in store.queue.jobs()}
    assert statuses == {
        old.id: JobStatus.SUPERSEDED,
        other_pr.id: JobStatus.QUEUED,
        new.id: JobStatus.QUEUED,
    }


def test_teardown_wins_over_pending_deploys_but_not_a_running_one(store: Store) -> None:
    running = store.queue.enqueue(deploy(3, "1" * 40), T0)
    claimed = store.queue.claim("w1", T0, LEASE)
    assert claimed is not None
    assert claimed.id == running.id
    pending = store.queue.enqueue(deploy(3, "2" * 40), T0)
    teardown = store.queue.enqueue(NewJob(JobKind.TEARDOWN, "acme/shop", 3), T0)
    statuses = {job.id: job.status for job in store.queue.jobs()}
    assert statuses[running.id] is JobStatus.RUNNING
    assert statuses[pending.id] is JobStatus.SUPERSEDED
    assert statuses[teardown.id] is JobStatus.QUEUED


def test_one_job_at_a_time_per_environment(store: Store) -> None:
    a1 = store.queue.enqueue(deploy(1), T0)
    a2 = store.queue.enqueue(NewJob(JobKind.REPORT, "acme/shop", 1), T0)
    b1 = store.queue.enqueue(deploy(2), T0)
    first = store.queue.claim("w1", T0, LEASE)
    second = store.queue.claim("w2", T0, LEASE)
    assert first is not None
    assert first.id == a1.id
    assert second is not None
    assert second.id == b1.id
    assert store.queue.claim("w3", T0, LEASE) is None
    assert store.queue.finish(first, "w1", JobStatus.DONE, T0) is not None
    third = store.queue.claim("w3", T0, LEASE)
    assert third is not None
    assert third.id == a2.id


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_finish(store: Store) -> None:
    job = store.queue.enqueue(deploy(4), T0)
    dead = store.queue.claim("dead-worker", T0, LEASE)
    assert dead is not None
    assert store.queue.claim("w2", T0 + LEASE / 2, LEASE) is None  # lease still live
    later = T0 + LEASE + timedelta(seconds=1)
    taken = store.queue.claim("w2", later, LEASE)
    assert taken is not None
    assert taken.id == job.id
    assert taken.attempts == 2
    assert not store.queue.heartbeat(dead, "dead-worker", later, LEASE)
    assert store.queue.finish(dead, "dead-worker", JobStatus.DONE, later) is None
    done = store.queue.finish(taken, "w2", JobStatus.DONE, later)
    assert done is not None
    assert done.status is JobStatus.DONE


def test_a_started_previews_follow_ups_go_before_new_deploys(store: Store) -> None:
    deploys = [store.queue.enqueue(deploy(pr), T0) for pr in (20, 21)]
    seed = store.queue.enqueue(NewJob(JobKind.SEED, "acme/shop", 19), T0)
    report = store.queue.enqueue(NewJob(JobKind.REPORT, "acme/shop", 18), T0)
    order = [store.queue.claim(f"w{i}", T0, LEASE) for i in range(4)]
    assert [job.id for job in order if job] == [seed.id, report.id, *(d.id for d in deploys)]


def test_heartbeat_keeps_the_lease(store: Store) -> None:
    store.queue.enqueue(deploy(5), T0)
    job = store.queue.claim("w1", T0, LEASE)
    assert job is not None
    assert store.queue.heartbeat(job, "w1", T0 + LEASE - timedelta(seconds=1), LEASE)
    assert store.queue.claim("w2", T0 + LEASE + timedelta(seconds=1), LEASE) is None


def test_retry_waits_for_run_after(store: Store) -> None:
    store.queue.enqueue(deploy(6), T0)
    job = store.queue.claim("w1", T0, LEASE)
    assert job is not None
    retried = store.queue.retry(job, "w1", T0, T0 + timedelta(seconds=10), "GitHub said 502")
    assert retried is not None
    assert retried.status is JobStatus.QUEUED
    assert retried.last_error == "GitHub said 502"
    assert store.queue.claim("w1", T0 + timedelta(seconds=9), LEASE) is None
    again = store.queue.claim("w1", T0 + timedelta(seconds=10), LEASE)
    assert again is not None
    assert again.attempts == 2


def test_counts_and_payload_round_trip(store: Store) -> None:
    store.queue.enqueue(NewJob(JobKind.COMMENT, "acme/shop", 9, {"body": "/preview help ☃"}), T0)
    (job,) = store.queue.jobs()
    assert job.payload == {"body": "/preview help ☃"}
    assert store.queue.counts()[JobStatus.QUEUED] == 1


def test_concurrent_workers_never_share_an_environment(
    store: Store, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Several connections claim at once; no environment ever has two live leases."""
    for pr in range(1, 6):
        for _ in range(4):
            store.queue.enqueue(NewJob(JobKind.COMMENT, "acme/shop", pr), T0)
    url = (
        f"sqlite:///{tmp_path}/state.db"
        if store.dialect == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    claimed: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        own = open_store(url)
        try:
            for _ in range(40):
                job = own.queue.claim(name, T0, LEASE)
                if job is None:
                    continue
                with lock:
                    busy = {pr for _, pr, _ in claimed}
                    assert job.pr_number not in busy, "two live leases on one environment"
                    claimed.append((name, job.pr_number, job.id))
                with lock:
                    claimed.remove((name, job.pr_number, job.id))
                own.queue.finish(job, name, JobStatus.DONE, T0)
        finally:
            own.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.queue.counts()[JobStatus.DONE] == 20


def test_pull_requests_promotions_and_links(store: Store) -> None:
    pr = PullRequest(
        "acme/shop", 12, "open", "c" * 40, "feat/x", "octocat", False, True, ("preview",), T0
    )
    store.pull_requests.save(pr)
    assert store.pull_requests.get(EnvironmentKey("acme/shop", 12)) == pr
    assert store.pull_requests.open_at_sha("acme/shop", "c" * 40) == [pr]
    image = "ghcr.io/acme/shop@sha256:" + "d" * 64
    store.pull_requests.promote(Promotion("acme/shop", "c" * 40, image, "ci", T0))
    found = store.pull_requests.promotion("acme/shop", "c" * 40)
    assert found is not None
    assert found.image == image
    links = store.pull_requests.links(EnvironmentKey("acme/shop", 12))
    assert links.comment_id is None
    store.pull_requests.save_links(
        links.__class__("acme/shop", 12, comment_id=5, deployment_id=6, deployment_sha="c" * 40)
    )
    assert store.pull_requests.links(EnvironmentKey("acme/shop", 12)).deployment_id == 6


def test_accepted_deliveries_supersede_like_enqueue(store: Store) -> None:
    """The one-statement path (PostgreSQL) applies the same supersede rule as enqueue."""
    first = store.queue.accept_delivery("d-a", "pull_request", [deploy(11, "1" * 40)], T0)
    other = store.queue.accept_delivery("d-b", "pull_request", [deploy(12, "1" * 40)], T0)
    second = store.queue.accept_delivery("d-c", "pull_request", [deploy(11, "2" * 40)], T0)
    assert first is not None
    assert other is not None
    assert second is not None
    statuses = {job.id: (job.status, job.delivery_id) for job in store.queue.jobs()}
    assert statuses == {
        first[0].id: (JobStatus.SUPERSEDED, "d-a"),
        other[0].id: (JobStatus.QUEUED, "d-b"),
        second[0].id: (JobStatus.QUEUED, "d-c"),
    }
    assert store.queue.accept_delivery("d-c", "pull_request", [deploy(11)], T0) is None


def test_prune_forgets_old_finished_jobs_and_deliveries_only(store: Store) -> None:
    old_done = store.queue.accept_delivery("old", "pull_request", [deploy(21)], T0)
    assert old_done is not None
    claimed = store.queue.claim("w", T0, LEASE)
    assert claimed is not None
    store.queue.finish(claimed, "w", JobStatus.DONE, T0)
    old_queued = store.queue.enqueue(deploy(22), T0)  # never pruned, however old
    later = T0 + timedelta(days=40)
    store.queue.accept_delivery("new", "pull_request", [deploy(23)], later)
    assert store.queue.prune(later - timedelta(days=30)) == (1, 1)
    assert sorted(job.pr_number for job in store.queue.jobs()) == [old_queued.pr_number, 23]
    assert store.queue.accept_delivery("old", "pull_request", [deploy(21)], later) is not None
    assert store.queue.accept_delivery("new", "pull_request", [deploy(23)], later) is None
