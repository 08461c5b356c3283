"""The whole service in one test: webhook over HTTP, the real store, the worker, fake GitHub.

Only the Pulumi engine is a stand-in here (tests/e2e drive the real one);
GitHub is the OpenAPI-checked fake, reached by the real PyGithub client.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from envs.config.spec_loading import parse_spec
from envs.core.errors import ConfigError
from envs.core.jobs import Job, JobStatus
from envs.core.spec import EnvironmentSpec
from envs.environments.lifecycle import Lifecycle
from envs.environments.registry import RegistryClient
from envs.environments.seed_run import SeedPlace
from envs.github.client import PyGithubClient
from envs.github.webhook_app import ServiceConfig, StorePool, create_app
from envs.store import Store, open_store
from envs.worker.handlers import Handlers
from envs.worker.loop import Worker, WorkerOptions
from tests.contract.fake_github import FakeGitHub, client_options
from tests.contract.github_contract import webhook_examples
from tests.doubles import Clock, RecordingEngine
from tests.helpers import deliver
from tests.http_server import serving

SECRET = b"flow-secret"
PROMOTE_TOKEN = "flow-promote-token"
REPO = "Codertocat/Hello-World"  # the repository of GitHub's example payloads
PR = 2
SPEC_TEXT = """\
version: 1
image: {repository: ghcr.io/codertocat/hello-world}
url: {host_template: "{name}.preview.example.test"}
ttl: 48h
"""


def image(n: int) -> str:
    return f"ghcr.io/codertocat/hello-world@sha256:{n:064x}"


def pr_event(action: str, sha: str | None = None, **changes: Any) -> dict[str, Any]:
    """GitHub's example for ``action``, optionally at another head SHA."""
    example = next(e for e in webhook_examples()["pull_request"] if e["action"] == action)
    payload = copy.deepcopy(example)
    if sha is not None:
        payload["pull_request"]["head"]["sha"] = sha
    payload["pull_request"].update(changes)
    return payload


def comment(
    body: str, author: str, comment_id: int = 4242, created_at: str | None = None
) -> dict[str, Any]:
    """GitHub's example comment on the PR; written now (GitHub's clock) unless ``created_at``."""
    payload = copy.deepcopy(webhook_examples()["issue_comment"][0])
    payload["action"] = "created"
    payload["issue"]["number"] = PR
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{PR}"}
    written = created_at or datetime.now(UTC).isoformat(timespec="seconds")
    payload["comment"].update({"id": comment_id, "body": body, "created_at": written})
    payload["comment"]["user"]["login"] = author
    return payload


@dataclass
class Service:
    store: Store
    fake: FakeGitHub
    http: httpx.Client
    engine: RecordingEngine
    clock: Clock
    worker: Worker
    specs: dict[str, EnvironmentSpec]

    def deliver(self, event: str, payload: dict[str, Any]) -> httpx.Response:
        response = deliver(str(self.http.base_url).rstrip("/"), SECRET, event, payload)
        assert response.status_code in (200, 202), response.text
        return response

    def promote(self, sha: str, reference: str) -> None:
        response = self.http.post(
            "/promote",
            json={"repository": REPO, "sha": sha, "image": reference},
            headers={"Authorization": f"Bearer {PROMOTE_TOKEN}"},
        )
        assert response.status_code == 202, response.text

    def drain(self, limit: int = 200) -> list[Job]:
        """Run the worker until nothing is left, jumping the clock over retry waits."""
        ran: list[Job] = []
        for _ in range(limit):
            job = self.worker.run_once()
            if job is not None:
                ran.append(job)
                continue
            waiting = self.store.queue.jobs(status=JobStatus.QUEUED, limit=1000)
            if not waiting:
                return ran
            self.clock.now = max(self.clock.now, min(j.run_after for j in waiting))
        raise AssertionError(f"queue did not drain: {self.store.queue.jobs()}")

    def sticky(self) -> str:
        bodies = [
            c.body for c in self.fake.comments_on(REPO, PR) if "preview-envs:sticky" in c.body
        ]
        assert len(bodies) == 1, bodies
        return bodies[0]

    def replies(self) -> list[str]:
        return [
            c.body for c in self.fake.comments_on(REPO, PR) if "preview-envs:sticky" not in c.body
        ]

    def deployment_states(self) -> list[list[str]]:
        return [[s["state"] for s in d.statuses] for d in self.fake.deployments_of(REPO)]


@contextmanager
def running_service(
    state_url: str,
    fake: FakeGitHub,
    github_url: str,
    seed_url: str | None = None,
    spec_dir: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Iterator[Service]:
    """The service in-process; ``seed_url`` stands for the environment's in-cluster database."""
    clock = Clock()
    engine = RecordingEngine()
    specs = {REPO: parse_spec(SPEC_TEXT, "Hello-World.yaml")}

    def spec_for(repository: str) -> EnvironmentSpec:
        if repository not in specs:
            raise ConfigError(f"no spec for {repository}")
        return specs[repository]

    store = open_store(state_url)
    github = PyGithubClient.with_token("ghs_flow", client_options(github_url))
    lifecycle = Lifecycle(store, engine, clock=clock)  # type: ignore[arg-type]
    registry = RegistryClient()
    seeding = (
        SeedPlace(
            database=lambda env, spec: nullcontext(seed_url),
            spec_dir=lambda repository: spec_dir or Path("."),
            environ=environ or {},
        )
        if seed_url is not None
        else None
    )
    handlers = Handlers(
        store, lifecycle, github, spec_for, clock, registry=registry, seeding=seeding
    )
    worker = Worker(
        store,
        handlers,
        WorkerOptions(lease=timedelta(seconds=60), poll_interval=0.01),
        clock=clock,
        name="test-worker",
    )
    pool = StorePool(lambda: open_store(state_url), size=2)
    app = create_app(pool, ServiceConfig(SECRET, promote_token=PROMOTE_TOKEN), clock=clock)
    try:
        with serving(app) as base, httpx.Client(base_url=base, timeout=10) as http:
            yield Service(store, fake, http, engine, clock, worker, specs)
    finally:
        registry.close()
        store.close()
