"""The service end to end: GitHub webhooks in, a real environment on a real API server, the PR told.

``previewctl serve --workers 1`` runs as a process with the real Pulumi
engine against the local control plane; GitHub is the fake (every request
checked against GitHub's OpenAPI description); payloads are GitHub's own
examples, signed here.
"""

from __future__ import annotations

import copy
import time

import psycopg
import pytest
from kubernetes.client.rest import ApiException

from tests.cli_runner import REPO_ROOT
from tests.contract.fake_github import Comment
from tests.contract.service_harness import PR, REPO, SPEC_TEXT, comment, pr_event
from tests.e2e.conftest import Cluster
from tests.e2e.service import SHA_1, Running, namespace_of
from tests.pg_server import PgServer

pytestmark = pytest.mark.e2e

SHA_2 = "3" * 40
IMAGE_1 = "ghcr.io/codertocat/hello-world@sha256:" + "1c" * 32
IMAGE_2 = "ghcr.io/codertocat/hello-world@sha256:" + "2d" * 32


def preview_database(pg_server: PgServer, name: str) -> str:
    """What the environment's PostgreSQL would hold once the app migrated: the shop schema."""
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN CREATE ROLE app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    pg_server.create_database(name)
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO app')
    url = f"postgresql://app@127.0.0.1:{pg_server.port}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((REPO_ROOT / "tests" / "fixtures" / "sql" / "shop.sql").read_bytes())
    return url


def commands_run_for_maintainers_only(
    cluster: Cluster, service: Running, namespace: str, database: str
) -> None:
    """A reader's /preview commands are refused; a maintainer's run."""
    fake = service.fake
    # destroy refused, extend done
    fake.comments[11] = Comment(11, REPO, PR, "/preview destroy", "reader")
    service.deliver("issue_comment", comment("/preview destroy", "reader", comment_id=11))
    fake.comments[12] = Comment(12, REPO, PR, "/preview extend 48h", "maintainer")
    service.deliver("issue_comment", comment("/preview extend 48h", "maintainer", comment_id=12))
    fake.comments[15] = Comment(15, REPO, PR, "/preview extend 48h", "reader")
    service.deliver("issue_comment", comment("/preview extend 48h", "reader", comment_id=15))
    service.until(lambda: fake.comments[12].reactions == ["eyes", "rocket"], "the extend to finish")
    service.until(lambda: fake.comments[15].reactions == ["eyes", "confused"], "the refusal")
    assert fake.comments[11].reactions == ["eyes", "confused"]
    assert cluster.core.read_namespace(namespace).status.phase == "Active"

    # Reseed: refused for the reader, done for the maintainer.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("TRUNCATE customers CASCADE")
    for comment_id, user in ((13, "reader"), (14, "maintainer")):
        fake.comments[comment_id] = Comment(comment_id, REPO, PR, "/preview reseed", user)
        service.deliver("issue_comment", comment("/preview reseed", user, comment_id=comment_id))
    service.until(lambda: fake.comments[14].reactions == ["eyes", "rocket"], "the reseed to finish")
    assert fake.comments[13].reactions == ["eyes", "confused"]
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (1000,)


def check_guard_rails(cluster: Cluster, service: Running, namespace: str) -> None:
    """Labels, quota, default-deny policy, database credentials, and the stack in the backend."""
    labels = cluster.core.read_namespace(namespace).metadata.labels
    assert labels["preview-envs.dev/sha"] == SHA_1
    assert labels["preview-envs.dev/pr"] == str(PR)
    assert labels["app.kubernetes.io/managed-by"] == "preview-envs"
    quota = cluster.core.read_namespaced_resource_quota("preview-quota", namespace)
    assert quota.spec.hard["pods"]
    policy = cluster.networking.read_namespaced_network_policy("default-deny", namespace)
    assert policy.spec.policy_types == ["Ingress", "Egress"]
    secret = cluster.core.read_namespaced_secret("db-credentials", namespace)
    assert set(secret.data) == {"username", "password", "database", "url"}
    assert service.stack_file(namespace).is_file()


def test_pull_request_lifecycle_driven_by_github(
    cluster: Cluster, service: Running, pg_server: PgServer
) -> None:
    fake = service.fake
    database = preview_database(pg_server, "e2e_preview_app")
    service.spec_path.write_text(
        SPEC_TEXT + "database: {name: e2e_preview_app}\nseed: {mode: synthetic}\n"
    )
    # Opened, then CI promotes the image: the URL appears on the PR.
    started = time.monotonic()
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA_1, IMAGE_1)
    service.until(
        lambda: (
            "**ready**" in service.sticky() and service.states() == [["in_progress", "success"]]
        ),
        "the URL on the PR",
    )
    to_url = time.monotonic() - started
    print(f"webhook to URL on the PR: {to_url:.1f}s")
    namespace = namespace_of(cluster.core)
    deployment = cluster.apps.read_namespaced_deployment("app", namespace)
    assert deployment.spec.template.spec.containers[0].image == IMAGE_1
    check_guard_rails(cluster, service, namespace)
    url = f"http://{namespace}.preview.example.test"
    assert url in service.sticky()
    # Seeded once the first version was up, over the database address.
    service.until(lambda: "| Data | synthetic:" in service.sticky(), "the seeding")
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (1000,)
    (first,) = fake.deployments_of(REPO)
    assert first.statuses[-1]["state"] == "success"
    assert first.statuses[-1]["environment_url"] == url

    # A push: the new digest rolls out, the old deployment goes inactive.
    pushed = pr_event("synchronize", sha=SHA_2)
    fake.pulls[(REPO, PR)]["head_sha"] = SHA_2
    service.deliver("pull_request", pushed)
    service.promote(SHA_2, IMAGE_2)
    service.until(
        lambda: (
            service.states() == [["in_progress", "success", "inactive"], ["in_progress", "success"]]
        ),
        "the second deployment",
    )
    deployment = cluster.apps.read_namespaced_deployment("app", namespace)
    assert deployment.spec.template.spec.containers[0].image == IMAGE_2

    commands_run_for_maintainers_only(cluster, service, namespace, database)

    # Closed: namespace gone (not stuck Terminating), deployment inactive, comment updated.
    closed = copy.deepcopy(pr_event("closed"))
    closed["pull_request"]["head"]["sha"] = SHA_2
    started = time.monotonic()
    service.deliver("pull_request", closed)

    def namespace_gone() -> bool:
        try:
            cluster.core.read_namespace(namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    service.until(namespace_gone, "the namespace to be deleted")
    print(f"close to namespace gone: {time.monotonic() - started:.1f}s")
    service.until(
        lambda: (
            "**destroyed**" in service.sticky()
            and all(states[-1] == "inactive" for states in service.states())
        ),
        "the PR to show the environment destroyed and the deployments inactive",
    )
    assert not service.stack_file(namespace).exists(), "the stack is removed from the backend"
