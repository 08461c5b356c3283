"""The webhook service over real HTTP, fed GitHub's own example payloads, signed in the test."""

from __future__ import annotations

import copy
import json
import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from envs.core.jobs import JobKind, JobStatus
from envs.core.model import EnvironmentKey, FailureReason, OperationKind, OperationResult
from envs.core.payloads import PullRequestSnapshot, Teardown, read
from envs.core.rate_limits import RateLimit
from envs.github import signature
from envs.github.webhook_app import ServiceConfig, StorePool, create_app
from envs.store import Store, open_store
from tests.contract.github_contract import webhook_examples
from tests.http_server import serving

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"It's a Secret to Everybody"
PROMOTE_TOKEN = "promote-token-for-tests"


@pytest.fixture
def service(state_url: str, store: Store) -> Iterator[httpx.Client]:
    pool = StorePool(lambda: open_store(state_url), size=4)
    app = create_app(pool, ServiceConfig(SECRET, promote_token=PROMOTE_TOKEN))
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def deliver(
    client: httpx.Client,
    event: str,
    payload: Any,
    delivery: str | None = None,
    secret: bytes = SECRET,
    sign: bool = True,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }
    if sign:
        headers["X-Hub-Signature-256"] = signature.sign(secret, body)
    return client.post("/webhook", content=body, headers=headers)


def pr_comment(body: str, author: str = "octocat") -> dict[str, Any]:
    """GitHub's issue_comment example, made a comment on a PR (the examples are on issues)."""
    example = copy.deepcopy(webhook_examples()["issue_comment"][0])
    example["action"] = "created"
    example["issue"]["pull_request"] = {"url": example["issue"]["url"].replace("issues", "pulls")}
    example["comment"]["body"] = body
    example["comment"]["user"]["login"] = author
    return example


EXPECTED_PR_JOB = {
    "opened": JobKind.PR_EVENT,
    "reopened": JobKind.PR_EVENT,
    "synchronize": JobKind.PR_EVENT,
    "ready_for_review": JobKind.PR_EVENT,
    "converted_to_draft": JobKind.PR_EVENT,
    "labeled": JobKind.PR_EVENT,
    "unlabeled": JobKind.PR_EVENT,
    "closed": JobKind.TEARDOWN,
}


def test_every_pull_request_example_is_queued_or_ignored(
    service: httpx.Client, store: Store
) -> None:
    examples = webhook_examples()["pull_request"]
    assert len(examples) >= 20
    expected_jobs = 0
    for example in examples:
        response = deliver(service, "pull_request", example)
        assert response.status_code == 202, response.text
        kind = EXPECTED_PR_JOB.get(example["action"])
        if kind is None:
            assert response.json()["queued"] == []
            continue
        expected_jobs += 1
        (job_id,) = response.json()["queued"]
        (job,) = [j for j in store.queue.jobs(limit=1000) if j.id == job_id]
        assert job.kind is kind
        assert job.repository == example["repository"]["full_name"]
        assert job.pr_number == example["pull_request"]["number"]
        payload = read(job.kind, job.payload)
        snapshot = payload.pull_request if isinstance(payload, Teardown) else payload
        assert isinstance(snapshot, PullRequestSnapshot)
        assert snapshot.head_sha == example["pull_request"]["head"]["sha"]
        assert snapshot.draft == example["pull_request"].get("draft", False)
    assert len(store.queue.jobs(limit=1000)) == expected_jobs


def test_promotion_examples_queue_a_promotion_only_on_success(
    service: httpx.Client, store: Store
) -> None:
    promoted = []
    for event in ("workflow_run", "check_suite"):
        for example in webhook_examples()[event]:
            response = deliver(service, event, example)
            assert response.status_code == 202, response.text
            run = example["workflow_run" if event == "workflow_run" else "check_suite"]
            success = example["action"] == "completed" and run["conclusion"] == "success"
            assert bool(response.json()["queued"]) == success
            if success:
                promoted.append(run["head_sha"])
    jobs = store.queue.jobs(limit=1000)
    assert sorted(job.payload["head_sha"] for job in jobs) == sorted(promoted)
    assert {job.kind for job in jobs} == {JobKind.PROMOTE}


def test_comments_on_prs_with_a_command_are_queued(service: httpx.Client, store: Store) -> None:
    for example in webhook_examples()["issue_comment"]:  # all on issues, not PRs
        assert deliver(service, "issue_comment", example).json()["queued"] == []
    response = deliver(service, "issue_comment", pr_comment("LGTM\n/preview extend 48h"))
    (job_id,) = response.json()["queued"]
    (job,) = store.queue.jobs()
    assert job.id == job_id
    assert job.kind is JobKind.COMMENT
    assert job.payload["body"] == "LGTM\n/preview extend 48h"
    assert deliver(service, "issue_comment", pr_comment("no command here")).json()["queued"] == []


def test_ping_and_unknown_events(service: httpx.Client, store: Store) -> None:
    ping = deliver(service, "ping", webhook_examples()["ping"][0])
    assert ping.status_code == 200
    assert ping.json()["note"] == "pong"
    assert deliver(service, "star", {"action": "created"}).status_code == 204
    assert store.queue.jobs() == []


def test_bad_and_missing_signatures_queue_nothing(service: httpx.Client, store: Store) -> None:
    example = webhook_examples()["pull_request"][0]
    assert deliver(service, "pull_request", example, sign=False).status_code == 401
    assert deliver(service, "pull_request", example, secret=b"wrong").status_code == 401
    body = json.dumps(example).encode()
    tampered = signature.sign(SECRET, body)
    response = service.post(
        "/webhook",
        content=body + b" ",
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "d-tampered",
            "X-Hub-Signature-256": tampered,
        },
    )
    assert response.status_code == 401
    assert store.queue.jobs() == []


def test_a_redelivery_is_queued_once(service: httpx.Client, store: Store) -> None:
    example = webhook_examples()["pull_request"][0]
    first = deliver(
        service, "pull_request", example, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958"
    )
    again = deliver(
        service, "pull_request", example, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958"
    )
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert len(store.queue.jobs()) == 1


def test_oversized_malformed_and_incomplete_bodies(service: httpx.Client, store: Store) -> None:
    huge = b"{" + b" " * (6 * 1024 * 1024) + b"}"
    assert deliver(service, "pull_request", huge).status_code == 413
    assert deliver(service, "pull_request", b"{not json").status_code == 400
    assert deliver(service, "pull_request", b"[1, 2]").status_code == 400
    missing = copy.deepcopy(webhook_examples()["pull_request"][0])
    del missing["pull_request"]["head"]
    response = deliver(service, "pull_request", missing)
    assert response.status_code == 400
    assert "pull_request.head" in response.json()["error"]
    no_delivery = service.post(
        "/webhook",
        content=b"{}",
        headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": signature.sign(SECRET, b"{}")},
    )
    assert no_delivery.status_code == 400
    assert store.queue.jobs() == []


def test_absurd_numbers_and_depths_get_a_400_never_a_500(
    service: httpx.Client, store: Store
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    answered = deliver(service, "pull_request", deep)
    assert answered.status_code == 400
    assert "nested too deeply" in answered.json()["error"]
    huge = copy.deepcopy(webhook_examples()["pull_request"][0])
    huge["pull_request"]["number"] = 10**30
    answered = deliver(service, "pull_request", huge)
    assert answered.status_code == 400
    assert "pull_request.number" in answered.json()["error"]
    comment = pr_comment("/preview up")
    comment["comment"]["id"] = 10**30
    assert deliver(service, "issue_comment", comment).status_code == 400
    assert store.queue.jobs() == []


def test_unsigned_deliveries_cannot_grow_the_metrics(service: httpx.Client) -> None:
    """300 unsigned requests with invented event names: no new series (the registry stays small)."""
    for n in range(300):
        deliver(service, f"invented-{n}", {"n": n}, sign=False)
    deliver(service, "invented-signed", {"n": 1})  # signed, but not an event we know
    series = [
        line
        for line in service.get("/metrics").text.splitlines()
        if line.startswith("preview_webhook_deliveries_total{")
    ]
    assert series == [
        'preview_webhook_deliveries_total{event="other",outcome="bad_signature"} 300.0',
        'preview_webhook_deliveries_total{event="other",outcome="unsupported"} 1.0',
    ]


def test_hostile_branch_names_and_comment_bodies_are_stored_verbatim(
    service: httpx.Client, store: Store
) -> None:
    example = copy.deepcopy(webhook_examples()["pull_request"][0])
    hostile = "feat/$(rm -rf ~);DROP TABLE jobs;--\u202e\u0000'\"`"
    example["pull_request"]["head"]["ref"] = hostile
    assert deliver(service, "pull_request", example).status_code == 202
    body = "/preview destroy'; DELETE FROM jobs; --\x00\u202e" + "x" * 100_000
    assert deliver(service, "issue_comment", pr_comment(body)).status_code == 202
    jobs = {job.kind: job for job in store.queue.jobs()}
    assert jobs[JobKind.PR_EVENT].payload["branch"] == hostile
    assert jobs[JobKind.COMMENT].payload["body"] == body[:65_536]
    assert all(job.status is JobStatus.QUEUED for job in jobs.values())


def test_promote_needs_the_token_and_a_digest(service: httpx.Client, store: Store) -> None:
    good = {
        "repository": "acme/shop",
        "sha": "c" * 40,
        "image": "ghcr.io/acme/shop@sha256:" + "d" * 64,
    }
    auth = {"Authorization": f"Bearer {PROMOTE_TOKEN}"}
    assert service.post("/promote", json=good).status_code == 401
    assert (
        service.post("/promote", json=good, headers={"Authorization": "Bearer x"}).status_code
        == 401
    )
    for _ in range(50):  # a flood is audited once a minute per address, not once a request
        service.post("/promote", json=good, headers={"Authorization": "Bearer y"})
    (refused,) = [e for e in store.audit_entries() if e.action == "promote.refused"]
    assert refused.actor == "client 127.0.0.1"
    assert refused.detail == {"reason": "missing bearer token"}
    tag_only = good | {"image": "ghcr.io/acme/shop:latest"}
    refused = service.post("/promote", json=tag_only, headers=auth)
    assert refused.status_code == 400
    assert "not pinned by digest" in refused.json()["error"]
    assert service.post("/promote", json=good, headers=auth).status_code == 202
    promotion = store.pull_requests.promotion("acme/shop", "c" * 40)
    assert promotion is not None
    assert promotion.image == good["image"]
    (job,) = store.queue.jobs()
    assert job.kind is JobKind.PROMOTE


def test_health_readiness_and_metrics(service: httpx.Client) -> None:
    assert service.get("/healthz").text == "ok"
    assert service.get("/readyz").status_code == 200
    deliver(service, "ping", webhook_examples()["ping"][0])
    metrics = service.get("/metrics").text
    assert 'preview_webhook_deliveries_total{event="ping",outcome="ping"} 1.0' in metrics
    assert 'preview_jobs{status="queued"} 0.0' in metrics
    deliver(service, "pull_request", webhook_examples()["pull_request"][0])
    assert 'preview_jobs{status="queued"} 1.0' in service.get("/metrics").text


def test_the_shipped_promote_workflow_step_is_accepted(service: httpx.Client, store: Store) -> None:
    """Run the `run:` script of .github/examples/promote-image.yml against the service."""
    workflow = (
        Path(__file__).parents[2] / ".github" / "examples" / "promote-image.yml"
    ).read_text()
    steps = yaml.safe_load(workflow)["jobs"]["image"]["steps"]
    (step,) = [s for s in steps if s.get("name") == "Promote the digest for this commit"]
    env = {
        "PATH": "/usr/bin:/bin",
        "URL": str(service.base_url).rstrip("/"),
        "TOKEN": PROMOTE_TOKEN,
        "REPOSITORY": "Acme/Shop",
        "SHA": "e" * 40,
        "IMAGE": "ghcr.io/Acme/Shop@sha256:" + "f" * 64,
    }
    script = ["bash", "-euo", "pipefail", "-c", step["run"]]
    result = subprocess.run(script, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    promotion = store.pull_requests.promotion("Acme/Shop", "e" * 40)
    assert promotion is not None
    assert promotion.image == "ghcr.io/acme/shop@sha256:" + "f" * 64


def test_a_corrupt_sqlite_store_is_not_ready(tmp_path: Path) -> None:
    """A probe that read one table passed on a file whose other pages were garbage."""
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    seeded = open_store(url)
    for n in range(200):  # enough rows that the file has pages to damage
        seeded.audit("someone", "filler", datetime.now(UTC), None, {"n": n, "pad": "x" * 500})
    seeded.close()
    with path.open("r+b") as damaged:  # a disk error, or a copy cut short
        damaged.seek(4096 * 3)
        damaged.write(b"\xde\xad\xbe\xef" * 4096)
    pool = StorePool(lambda: open_store(url), size=1)
    app = create_app(pool, ServiceConfig(SECRET, promote_token=PROMOTE_TOKEN))
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        answered = client.get("/readyz")
        assert answered.status_code == 503
        assert "state store unavailable" in answered.json()["error"]


def test_a_body_that_never_finishes_is_answered_408(state_url: str) -> None:
    """A client that sends headers and a trickle, then stalls, holds nothing for long."""
    pool = StorePool(lambda: open_store(state_url), size=1)
    app = create_app(pool, ServiceConfig(SECRET, body_timeout_s=0.5))
    with serving(app) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as stalled:
            stalled.sendall(
                b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n"
                b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"zen": '
            )
            answer = stalled.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert b"did not arrive in time" in answer


def test_the_dashboard_asks_only_for_series_the_service_exports(
    service: httpx.Client, store: Store
) -> None:
    """docs/grafana-dashboard.json is validated against what /metrics really says."""
    key = EnvironmentKey("acme/shop", 1)
    now = datetime.now(UTC)
    for kind, result in ((OperationKind.UP, OperationResult.SUCCEEDED),
                         (OperationKind.UP, OperationResult.FAILED),
                         (OperationKind.DOWN, OperationResult.SUCCEEDED),
                         (OperationKind.RESEED, OperationResult.SUCCEEDED)):  # fmt: skip
        op = store.start_operation(key, kind, "ci", now, "a" * 40, "img")
        reason = FailureReason.ROLLOUT if result is OperationResult.FAILED else None
        store.finish_operation(op, result, now + timedelta(seconds=12), "said why", reason)
    # One failed before reasons were kept.
    op = store.start_operation(key, OperationKind.RESEED, "ci", now, "a" * 40, "img")
    store.finish_operation(op, OperationResult.FAILED, now, "said why")
    seen = RateLimit("acme", remaining=4321, limit=5000, resets_at=now, seen_at=now)
    store.github_cache.save_rate_limit(seen)
    deliver(service, "ping", webhook_examples()["ping"][0])
    exported = service.get("/metrics").text
    samples = {
        line.split("{")[0].split(" ")[0] for line in exported.splitlines() if line[:1] != "#"
    }
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bpreview_[a-z_]+", target["expr"])
    }
    assert asked, "the dashboard queries the service's series"
    assert asked <= samples, f"asked for but not exported: {sorted(asked - samples)}"
    assert 'preview_operation_seconds_count{kind="up",result="failed"} 1.0' in exported
    assert "preview_queue_oldest_seconds 0.0" in exported
    assert 'preview_failures_total{kind="up",reason="rollout"} 1.0' in exported
    assert 'preview_failures_total{kind="reseed",reason="unknown"} 1.0' in exported
    assert 'preview_github_rate_limit_remaining{account="acme"} 4321.0' in exported
