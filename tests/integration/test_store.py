"""The state store behaves the same on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from envs.core.etags import CachedResponse
from envs.core.model import (
    Environment,
    EnvironmentKey,
    EnvironmentStatus,
    OperationKind,
    OperationResult,
)
from envs.store import NamespaceTaken, Store, open_store
from envs.store.store import migration_scripts

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make_env(pr: int = 42, **changes: object) -> Environment:
    env = Environment(
        repository="acme/shop",
        pr_number=pr,
        branch="feature/login",
        namespace=f"pr-{pr}-feature-login",
        stack=f"pr-{pr}-feature-login",
        status=EnvironmentStatus.PROVISIONING,
        created_at=T0,
        updated_at=T0,
        expires_at=T0 + timedelta(hours=72),
        head_sha="a" * 40,
        image="ghcr.io/acme/shop@sha256:" + "b" * 64,
    )
    return env.with_changes(**changes) if changes else env


def test_migrations_are_applied_once(store: Store, tmp_path: Path) -> None:
    assert store.applied_migrations == [v for v, _ in migration_scripts(store.dialect)]


def test_reopening_applies_nothing_new(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    open_store(url).close()
    again = open_store(url)
    assert again.applied_migrations == []
    again.close()


def test_reopening_postgres_applies_nothing_new(pg_url: str) -> None:
    open_store(pg_url).close()
    again = open_store(pg_url)
    assert again.applied_migrations == []
    again.close()


def test_save_and_get_round_trip(store: Store) -> None:
    env = make_env()
    store.save(env)
    assert store.get(env.key) == env


def test_timestamps_come_back_timezone_aware(store: Store) -> None:
    store.save(make_env())
    loaded = store.require(EnvironmentKey("acme/shop", 42))
    assert loaded.expires_at.tzinfo is not None
    assert loaded.expires_at == T0 + timedelta(hours=72)


def test_save_updates_in_place(store: Store) -> None:
    store.save(make_env())
    store.save(make_env(status=EnvironmentStatus.READY, url="https://x.example"))
    [env] = store.environments()
    assert env.status is EnvironmentStatus.READY
    assert env.url == "https://x.example"


def test_missing_environment(store: Store) -> None:
    assert store.get(EnvironmentKey("acme/shop", 1)) is None


def test_filter_by_status_and_repository(store: Store) -> None:
    store.save(make_env(1))
    store.save(make_env(2, status=EnvironmentStatus.DESTROYED))
    store.save(make_env(3, repository="acme/blog", namespace="blog-pr-3", stack="blog-pr-3"))
    live = store.environments([EnvironmentStatus.PROVISIONING])
    assert [e.pr_number for e in live] == [3, 1] or [e.pr_number for e in live] == [1, 3]
    assert [e.pr_number for e in store.environments(repository="acme/shop")] == [1, 2]


def test_namespace_cannot_be_shared_between_environments(store: Store) -> None:
    store.save(make_env(1))
    clash = make_env(1, repository="other/shop")
    with pytest.raises(NamespaceTaken, match=r"naming\.prefix"):
        store.save(clash)
    assert store.get(clash.key) is None


def test_lookup_by_namespace(store: Store) -> None:
    store.save(make_env(5))
    found = store.by_namespace("pr-5-feature-login")
    assert found is not None
    assert found.pr_number == 5


def test_delete(store: Store) -> None:
    env = make_env()
    store.save(env)
    store.delete(env.key)
    assert store.get(env.key) is None


def test_operations_journal_records_who_what_and_timing(store: Store) -> None:
    key = EnvironmentKey("acme/shop", 42)
    op = store.start_operation(
        key, OperationKind.UP, "octocat", T0, "a" * 40, "img@sha256:" + "c" * 64
    )
    assert op.result is OperationResult.RUNNING
    done = store.finish_operation(op, OperationResult.SUCCEEDED, T0 + timedelta(seconds=12))
    assert done.duration_s == 12
    failed_op = store.start_operation(key, OperationKind.DOWN, "bot", T0 + timedelta(minutes=1))
    store.finish_operation(failed_op, OperationResult.FAILED, T0 + timedelta(minutes=2), "boom")
    history = store.operations("acme/shop", 42)
    assert [(o.kind, o.result, o.actor) for o in history] == [
        (OperationKind.DOWN, OperationResult.FAILED, "bot"),
        (OperationKind.UP, OperationResult.SUCCEEDED, "octocat"),
    ]
    assert history[0].error == "boom"
    assert store.operations("acme/shop", 7) == []
    assert len(store.operations()) == 2


def test_audit_trail_is_append_only_and_filterable(store: Store) -> None:
    key = EnvironmentKey("acme/shop", 42)
    store.audit("octocat", "up.succeeded", T0, key, {"sha": "a" * 40, "nested": {"n": 1}})
    store.audit("gc", "gc.run", T0 + timedelta(minutes=5))
    entries = store.audit_entries()
    assert [e.action for e in entries] == ["gc.run", "up.succeeded"]
    mine = store.audit_entries("acme/shop", 42)
    assert len(mine) == 1
    assert mine[0].detail == {"sha": "a" * 40, "nested": {"n": 1}}
    assert mine[0].at == T0


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_operation(
            EnvironmentKey("acme/shop", 1),
            OperationKind.UP,
            "x",
            datetime(2026, 1, 1),
        )


def test_bad_state_url_is_a_config_error() -> None:
    from envs.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not supported"):
        open_store("mysql://x")
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_store("sqlite://relative")


def test_unreachable_postgres_is_a_clear_failure() -> None:
    from envs.core.errors import OperationFailed

    with pytest.raises(OperationFailed, match="cannot connect to the state database"):
        open_store("postgresql://nobody:secretpw@127.0.0.1:1/x?connect_timeout=2")


def test_unreachable_postgres_message_hides_the_password() -> None:
    from envs.core.errors import OperationFailed

    with pytest.raises(OperationFailed) as info:
        open_store("postgresql://nobody:secretpw@127.0.0.1:1/x?connect_timeout=2")
    assert "secretpw" not in str(info.value)


def test_github_responses_are_kept_with_their_etag_and_replaced(store: Store) -> None:
    url = "/repos/acme/shop/pulls?state=open&per_page=100&page=1"
    assert store.github_cache.get(url) is None
    store.github_cache.put(url, CachedResponse('W/"abc"', "[1, 2]"))
    assert store.github_cache.get(url) == CachedResponse('W/"abc"', "[1, 2]")
    store.github_cache.put(url, CachedResponse('W/"def"', "[2]"))
    assert store.github_cache.get(url) == CachedResponse('W/"def"', "[2]")
