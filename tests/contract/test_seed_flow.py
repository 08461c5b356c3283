"""Seeding through the service: after the first deploy, and on `/preview reseed`.

The worker seeds a real PostgreSQL holding the shop schema; it stands for
the environment's in-cluster database (which the local control plane cannot
run: kwok's pods have no containers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from envs.config.spec_loading import parse_spec
from envs.core.jobs import JobStatus
from envs.core.model import EnvironmentKey, OperationKind, OperationResult
from tests.contract.fake_github import Comment, FakeGitHub
from tests.contract.service_harness import (
    PR,
    REPO,
    SPEC_TEXT,
    Service,
    comment,
    image,
    pr_event,
    running_service,
)
from tests.pg_server import PgServer
from tests.seeders.shop_data import RULES, SOURCE_ROWS

KEY = EnvironmentKey(REPO, PR)
SHA = pr_event("opened")["pull_request"]["head"]["sha"]
RECIPE = "seed: 7\nrows: 40\ntables:\n  customers: {rows: 25}\n"


def rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        found = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert found is not None
    count: int = found[0]
    return count


@pytest.fixture
def seeded_service(
    tmp_path: Path, shop_url: str, fake_github: tuple[FakeGitHub, str]
) -> Iterator[tuple[Service, str]]:
    fake, base = fake_github
    fake.roles[(REPO, "maintainer")] = "maintain"
    fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA}
    (tmp_path / "shop-recipe.yaml").write_text(RECIPE)
    with running_service(
        f"sqlite:///{tmp_path}/state.db", fake, base, seed_url=shop_url, spec_dir=tmp_path
    ) as service:
        service.specs[REPO] = parse_spec(
            SPEC_TEXT + "seed: {mode: synthetic, rules: shop-recipe.yaml}\n", "Hello-World.yaml"
        )
        yield service, shop_url


def deploy(service: Service) -> None:
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA, image(1))
    service.drain()


def test_a_new_environment_is_seeded_after_its_first_deploy(
    seeded_service: tuple[Service, str],
) -> None:
    service, url = seeded_service
    deploy(service)
    assert rows(url, "customers") == 25  # the recipe's count for this table
    assert rows(url, "orders") == 40  # its default for the others
    (seed_op,) = [
        op for op in service.store.operations(REPO, PR) if op.kind is OperationKind.RESEED
    ]
    assert seed_op.result is OperationResult.SUCCEEDED
    assert "| Data | synthetic:" in service.sticky()

    # A push redeploys but does not reseed: the data is the developer's now.
    service.deliver("pull_request", pr_event("synchronize", sha="5" * 40))
    service.promote("5" * 40, image(5))
    service.drain()
    reseeds = [op for op in service.store.operations(REPO, PR) if op.kind is OperationKind.RESEED]
    assert len(reseeds) == 1


def test_a_first_deploy_that_succeeds_on_retry_is_seeded(
    seeded_service: tuple[Service, str],
) -> None:
    """The database was created by the failed attempt; it is still empty when a retry succeeds."""
    service, url = seeded_service
    service.engine.fail_next = "pulumi up: connection reset by the API server"
    deploy(service)
    ups = [op for op in service.store.operations(REPO, PR) if op.kind is OperationKind.UP]
    assert [op.result for op in ups] == [OperationResult.SUCCEEDED, OperationResult.FAILED]
    assert rows(url, "customers") == 25
    reseeds = [op for op in service.store.operations(REPO, PR) if op.kind is OperationKind.RESEED]
    assert [op.result for op in reseeds] == [OperationResult.SUCCEEDED]


def test_an_environment_brought_back_after_its_teardown_is_seeded_again(
    seeded_service: tuple[Service, str],
) -> None:
    service, _ = seeded_service
    deploy(service)
    first = service.store.require(KEY).created_at
    service.deliver("pull_request", pr_event("closed"))
    service.drain()
    service.clock.advance(timedelta(minutes=5))
    service.deliver("pull_request", pr_event("reopened"))
    service.promote(SHA, image(1))
    service.drain()
    assert service.store.require(KEY).created_at > first
    reseeds = [op for op in service.store.operations(REPO, PR) if op.kind is OperationKind.RESEED]
    assert [op.result for op in reseeds] == [OperationResult.SUCCEEDED] * 2


def test_reseed_from_the_pr_replaces_the_data(seeded_service: tuple[Service, str]) -> None:
    service, url = seeded_service
    deploy(service)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM order_lines")
    service.fake.comments[31] = Comment(31, REPO, PR, "/preview reseed", "maintainer")
    service.deliver("issue_comment", comment("/preview reseed", "maintainer", comment_id=31))
    service.drain()
    assert rows(url, "order_lines") == 40
    assert service.fake.comments[31].reactions == ["eyes", "rocket"]
    reseeds = [op for op in service.store.operations(REPO, PR) if op.kind is OperationKind.RESEED]
    assert len(reseeds) == 2
    assert reseeds[0].actor == "maintainer"  # newest first: the reseed, then the first seed


def test_reseed_anonymised_without_a_source_says_what_is_missing(
    seeded_service: tuple[Service, str],
) -> None:
    service, url = seeded_service
    deploy(service)
    before = rows(url, "customers")
    service.fake.comments[32] = Comment(32, REPO, PR, "/preview reseed anonymised", "maintainer")
    body = "/preview reseed anonymised"
    service.deliver("issue_comment", comment(body, "maintainer", comment_id=32))
    service.drain()
    assert any("needs seed.rules and seed.source_url_env" in r for r in service.replies())
    assert service.fake.comments[32].reactions == ["eyes", "confused"]
    assert rows(url, "customers") == before
    assert service.store.queue.counts()[JobStatus.FAILED] == 0


def test_a_failed_seed_is_reported_and_the_data_left_intact(
    seeded_service: tuple[Service, str],
) -> None:
    service, url = seeded_service
    service.specs[REPO] = parse_spec(
        SPEC_TEXT + "seed: {mode: synthetic, rules: missing-recipe.yaml}\n", "Hello-World.yaml"
    )
    deploy(service)
    assert rows(url, "customers") == 0
    failed: list[Any] = service.store.queue.jobs(status=JobStatus.FAILED)
    assert [job.kind.value for job in failed] == ["seed"]
    assert "missing-recipe.yaml" in service.sticky()


@contextmanager
def anonymising_service(
    tmp_path: Path,
    shop_url: str,
    pg_server: PgServer,
    fake_github: tuple[FakeGitHub, str],
    source_name: str,
    changes: str = "",
) -> Iterator[tuple[Service, str]]:
    """The service seeding the shop from a source database (with ``changes`` applied to it)."""
    source = pg_server.create_database(source_name)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute((Path(__file__).parents[1] / "fixtures" / "sql" / "shop.sql").read_bytes())
        conn.execute(SOURCE_ROWS.encode())
        if changes:
            conn.execute(changes.encode())
    (tmp_path / "shop-rules.yaml").write_text(yaml.safe_dump(RULES))
    environ = {
        "SHOP_SOURCE_URL": source,
        "PREVIEW_ANONYMISE_SALT": "a-salt-of-32-characters-or-more!",
    }
    fake, base = fake_github
    fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA}
    with running_service(
        f"sqlite:///{tmp_path}/state.db", fake, base, shop_url, tmp_path, environ
    ) as service:
        service.specs[REPO] = parse_spec(
            SPEC_TEXT
            + "seed: {mode: anonymised, rules: shop-rules.yaml, source_url_env: SHOP_SOURCE_URL}\n",
            "Hello-World.yaml",
        )
        yield service, source


def test_anonymised_seeding_copies_the_source_without_its_personal_data(
    tmp_path: Path, shop_url: str, pg_server: PgServer, fake_github: tuple[FakeGitHub, str]
) -> None:
    with anonymising_service(tmp_path, shop_url, pg_server, fake_github, "seed_flow_source") as (
        service,
        source,
    ):
        deploy(service)
        assert "| Data | anonymised: " in service.sticky()
    assert rows(shop_url, "customers") == rows(source, "customers") == 200
    with psycopg.connect(shop_url) as conn:
        leaked = conn.execute(
            "SELECT count(*) FROM customers WHERE email LIKE 'real.person%'"
        ).fetchone()
    assert leaked == (0,)


def test_a_refused_anonymised_copy_tells_the_pr_no_value_or_count_of_the_source(
    tmp_path: Path, shop_url: str, pg_server: PgServer, fake_github: tuple[FakeGitHub, str]
) -> None:
    """The PR's author reads the sticky comment; the source's rows are not theirs to read.

    A kept product name holds a customer's e-mail: the leak check refuses
    the copy. The PR learns which column and what to do; the value and the
    number of hits stay in the service's log, the job record and the audit.
    """
    leaking = "UPDATE products SET name = 'real.person' || id || '@corp.example' WHERE id <= 3"
    with anonymising_service(
        tmp_path, shop_url, pg_server, fake_github, "seed_flow_refused_source", leaking
    ) as (service, _):
        deploy(service)
        said = service.sticky() + "\n".join(service.replies())
        (failed,) = service.store.queue.jobs(status=JobStatus.FAILED)
        audit = service.store.audit_entries(REPO, PR, limit=20)
    assert "leak check failed" in said
    assert "public.products.name" in said
    assert "real.person" not in said
    assert "public.products.name: 3" not in said, "the number of hits is the source's"
    assert "public.products.name: 3" in (failed.last_error or ""), "the operator's record has it"
    assert any("public.products.name: 3" in str(e.detail) for e in audit)
    assert rows(shop_url, "customers") == 0, "nothing was written"
