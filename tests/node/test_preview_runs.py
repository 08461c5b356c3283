"""A pull request gets a working app, with data, at a URL: on a real node, end to end.

The service (``previewctl serve``) runs as a process against the local
cluster whose node runs real containers; GitHub is the fake. The demo app
(examples/demo-app) is built from Debian's packages as CI would build it for
each commit, pushed to the local registry and promoted by digest. Its
PostgreSQL is the Debian-built image in a real pod with a real volume; the
worker seeds it through a port-forward, as a provisioner outside the cluster
does; the page is fetched through Traefik by the preview's host name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes.client.rest import ApiException

from tests.cli_runner import run_previewctl, toolchain_env
from tests.contract.fake_github import Comment, FakeGitHub
from tests.contract.service_harness import PR, REPO, comment, pr_event
from tests.e2e.service import SHA_1, Running, namespace_of, running_service
from tests.helpers import wait_for
from tests.node.conftest import DEMO_APP, VOLUMES, RealCluster, demo_image
from tests.node.real_node import SETTINGS
from tests.pg_server import PgServer

pytestmark = [pytest.mark.e2e, pytest.mark.real_node]

SHA_2 = "4" * 40
SHA_3 = "5" * 40
SPEC = (DEMO_APP / "preview.yaml").read_text()
RECIPE = (DEMO_APP / "seed-recipe.yaml").read_text()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, real_cluster: RealCluster) -> dict[str, str]:
    """Three builds of the demo app, as CI would push them for three commits."""
    work = tmp_path_factory.mktemp("builds")
    return {
        "v1": demo_image(work, "1"),
        "v2": demo_image(work, "2"),
        "broken": demo_image(work, "3", broken=True),
    }


@pytest.fixture
def service(
    real_cluster: RealCluster, tmp_path: Path, fake_github: tuple[FakeGitHub, str]
) -> Iterator[Running]:
    fake, github_url = fake_github
    with running_service(
        real_cluster.kubeconfig, tmp_path, fake, github_url, dict(SETTINGS)
    ) as running:
        running.spec_path.write_text(SPEC)
        (running.spec_path.parent / "seed-recipe.yaml").write_text(RECIPE)
        yield running


def rows(cluster: RealCluster, host: str) -> dict[str, Any]:
    response = cluster.get(host)
    assert response.status_code == 200, (response.status_code, response.text[:500])
    data: dict[str, Any] = response.json()
    return data


def host_of(service: Running) -> str:
    url = next(line for line in service.sticky().splitlines() if "preview.test" in line)
    return url.split("http://", 1)[1].split("/", 1)[0].split(")", 1)[0].split(" ", 1)[0]


def rows_now(cluster: RealCluster, host: str) -> dict[str, Any]:
    """The page's data if the URL answers 200 now, else {} (for waiting on a change)."""
    try:
        response = cluster.get(host)
    except OSError:
        return {}
    return response.json() if response.status_code == 200 else {}  # type: ignore[no-any-return]


def serving(cluster: RealCluster, host: str, version: str) -> bool:
    return rows_now(cluster, host).get("version") == version


def test_a_pull_request_gets_a_running_app_with_seeded_data_at_its_url(
    real_cluster: RealCluster, service: Running, images: dict[str, str]
) -> None:
    fake = service.fake
    started = time.monotonic()
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA_1, images["v1"])
    service.until(lambda: "Data" in service.sticky() and "synthetic" in service.sticky(),
                  "the preview to be ready and seeded", timeout=300)  # fmt: skip
    namespace = namespace_of(real_cluster.core)
    host = host_of(service)
    first = rows(real_cluster, host)
    assert first["version"] == "1"
    assert first["counts"] == {"customers": 12, "orders": 30}  # the recipe's rows, seeded
    print(f"webhook -> URL serving seeded rows: {time.monotonic() - started:.1f}s")

    # A push: CI promotes a new build; the URL serves it, and the data stays.
    fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA_2}
    service.deliver("pull_request", pr_event("synchronize", sha=SHA_2))
    service.promote(SHA_2, images["v2"])
    service.until(lambda: serving(real_cluster, host, "2"), "version 2 to serve", timeout=240)
    second = rows(real_cluster, host)
    assert second["customers"] == first["customers"]

    # The developer's own changes, then /preview reseed replaces them with the recipe's rows.
    sql = "DELETE FROM orders; UPDATE customers SET name = 'changed by hand'"
    real_cluster.exec_in(namespace, "postgres-0", ["psql", "-U", "app", "-d", "app", "-c", sql])
    changed = rows(real_cluster, host)
    assert changed["counts"]["orders"] == 0
    assert {c["name"] for c in changed["customers"]} == {"changed by hand"}
    fake.comments[41] = Comment(41, REPO, PR, "/preview reseed", "maintainer")
    service.deliver("issue_comment", comment("/preview reseed", "maintainer", comment_id=41))
    service.until(lambda: fake.comments[41].reactions == ["eyes", "rocket"], "the reseed")
    reseeded = rows(real_cluster, host)
    assert reseeded["counts"] == first["counts"]
    assert reseeded["customers"] == first["customers"]  # the recipe is deterministic

    # A build whose migration fails crash-loops: the PR is told the container's
    # reason, and version 2 keeps serving.
    fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA_3}
    service.deliver("pull_request", pr_event("synchronize", sha=SHA_3))
    service.promote(SHA_3, images["broken"])
    service.until(lambda: "keeps crashing" in service.sticky(), "the crash loop's report", 240)
    assert "exit code 1" in service.sticky()
    assert serving(real_cluster, host, "2")

    # Close: the namespace, its pods, containers and volume are gone, and the URL 404s.
    claims = [
        pv.metadata.name
        for pv in real_cluster.core.list_persistent_volume().items
        if pv.spec.claim_ref is not None and pv.spec.claim_ref.namespace == namespace
    ]
    assert claims, "the database's volume was provisioned by the local-path provisioner"
    service.deliver("pull_request", pr_event("closed"))
    wait_for(lambda: not _namespace_exists(real_cluster, namespace), "the namespace to go", 180)
    assert real_cluster.get(host).status_code == 404
    # The kubelet removes a deleted pod's exited containers in its garbage collection.
    wait_for(lambda: real_cluster.containers_of(namespace) == [], "its containers to go", 150)
    wait_for(
        lambda: (
            not {pv.metadata.name for pv in real_cluster.core.list_persistent_volume().items}
            & set(claims)
        ),
        "the volume to be deleted",
        120,
    )
    assert not list(VOLUMES.glob(f"*_{namespace}_*")), "its data directory is removed"


def _pod(cluster: RealCluster, namespace: str, component: str) -> str:
    pods = cluster.core.list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/name={component}"
    ).items
    running = [p.metadata.name for p in pods if p.status.phase == "Running"]
    assert running, [(p.metadata.name, p.status.phase) for p in pods]
    name: str = running[0]
    return name


def _connect_probe(cluster: RealCluster, namespace: str, pod: str) -> Any:
    """A TCP connect from inside ``pod`` (its own image's python3)."""

    def probe(host: str, port: int) -> str:
        code = (
            "import json, socket\n"
            "try:\n"
            f"    socket.create_connection(({host!r}, {port}), timeout=3).close(); print('open')\n"
            "except OSError:\n"
            "    print('refused or dropped')\n"
        )
        return cluster.exec_in(namespace, pod, ["python3", "-c", code]).strip()

    return probe


def _namespace_exists(cluster: RealCluster, name: str) -> bool:
    try:
        cluster.core.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_previews_reach_their_own_database_only(
    real_cluster: RealCluster, tmp_path: Path, images: dict[str, str]
) -> None:
    """Two previews made by previewctl (and seeded by it): each app reaches its own
    PostgreSQL; neither reaches the other's, nor the API server."""
    spec = tmp_path / "demo.yaml"
    spec.write_text(SPEC)
    (tmp_path / "seed-recipe.yaml").write_text(RECIPE)
    env = {
        "PREVIEW_STATE_DIR": str(tmp_path / "state"),
        "PREVIEW_KUBECONFIG": str(real_cluster.kubeconfig),
        **SETTINGS,
    }
    namespaces = {}
    for repository in ("acme/shop", "acme/blog"):
        result = run_previewctl(
            ["up", "--repo", repository, "--pr", "7", "--branch", "feature/x", "--sha", SHA_2,
             "--image", images["v1"], "--spec", str(spec), "--json"],
            tmp_path, toolchain_env() | env, timeout=600,
        )  # fmt: skip
        assert result.code == 0, result.stderr[-3000:]
        created = json.loads(result.stdout)
        namespaces[repository] = created["namespace"]
        host = created["url"].split("://", 1)[1]
        assert rows(real_cluster, host)["counts"] == {"customers": 12, "orders": 30}
    shop, blog = namespaces["acme/shop"], namespaces["acme/blog"]
    probe = _connect_probe(real_cluster, shop, _pod(real_cluster, shop, "app"))
    assert probe(f"postgres.{shop}.svc.cluster.local", 5432) == "open"
    assert probe(f"postgres.{blog}.svc.cluster.local", 5432) == "refused or dropped"
    assert probe("kubernetes.default.svc.cluster.local", 443) == "refused or dropped"
    for repository in namespaces:
        result = run_previewctl(
            ["down", "--repo", repository, "--pr", "7"], tmp_path, toolchain_env() | env,
            timeout=600,
        )  # fmt: skip
        assert result.code == 0, result.stderr[-3000:]
    for namespace in namespaces.values():
        wait_for(lambda n=namespace: not _namespace_exists(real_cluster, n), "teardown", 180)
        wait_for(lambda n=namespace: real_cluster.containers_of(n) == [], "its containers", 150)


def test_a_preview_is_seeded_from_an_anonymised_copy_of_a_source_on_the_host(
    real_cluster: RealCluster,
    tmp_path: Path,
    fake_github: tuple[FakeGitHub, str],
    pg_server: PgServer,
    images: dict[str, str],
) -> None:
    """The worker reads the source on the host and writes the preview's database through
    the API server, with the rules `seed inspect` proposed for the demo app."""
    source = pg_server.create_database("demo_source")
    with psycopg.connect(source, autocommit=True) as conn:
        # Production's database, migrated by the app itself (its migration record too).
        conn.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY)")
        for migration in sorted((DEMO_APP / "migrations").glob("*.sql")):
            conn.execute(migration.read_bytes())
            conn.execute("INSERT INTO schema_migrations VALUES (%s)", (migration.name,))
        conn.execute(
            "INSERT INTO customers (name, email, city) SELECT 'Person ' || g,"
            " 'person' || g || '@corp.example', 'Lyon' FROM generate_series(1, 50) g"
        )
        conn.execute(
            "INSERT INTO orders (customer_id, total, status)"
            " SELECT 1 + g % 50, g * 1.5, 'paid' FROM generate_series(1, 120) g"
        )
    fake, github_url = fake_github
    env = {
        **SETTINGS,
        "DEMO_SOURCE_URL": source,
        "PREVIEW_ANONYMISE_SALT": "a-salt-of-32-characters-or-more!",
    }
    spec = SPEC.replace(
        "seed:\n  mode: synthetic\n  rules: seed-recipe.yaml\n",
        "seed:\n  mode: anonymised\n  rules: anonymise-rules.yaml\n"
        "  source_url_env: DEMO_SOURCE_URL\n",
    )
    assert "anonymised" in spec
    with running_service(real_cluster.kubeconfig, tmp_path, fake, github_url, env) as service:
        service.spec_path.write_text(spec)
        rules = (DEMO_APP / "anonymise-rules.yaml").read_text()
        (service.spec_path.parent / "anonymise-rules.yaml").write_text(rules)
        service.deliver("pull_request", pr_event("opened"))
        service.promote(SHA_1, images["v1"])
        service.until(lambda: "**ready**" in service.sticky(), "the preview to be ready", 300)
        namespace = namespace_of(real_cluster.core)
        host = host_of(service)
        service.until(
            lambda: rows_now(real_cluster, host).get("counts", {}).get("customers") == 50,
            "the copied rows",
            120,
        )
        copied = rows(real_cluster, host)
        assert copied["counts"] == {"customers": 50, "orders": 120}
        page = real_cluster.get(host, "/").text
        assert "corp.example" not in page
        assert "Person " not in page
        service.deliver("pull_request", pr_event("closed"))
        wait_for(lambda: not _namespace_exists(real_cluster, namespace), "teardown", 180)
