"""The real PyGithub client pointed at the fake GitHub (the fixture is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from envs.github.client import PyGithubClient
from envs.store import Store, open_store
from tests.contract.fake_github import FakeGitHub, client_options


@pytest.fixture
def github(fake_github: tuple[FakeGitHub, str]) -> PyGithubClient:
    _, base = fake_github
    return PyGithubClient.with_token("ghs_test_token", client_options(base, retries=2))


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    """The service's store, opened beside it, on both backends."""
    opened = open_store(state_url)
    yield opened
    opened.close()
