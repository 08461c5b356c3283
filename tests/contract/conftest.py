"""A fake GitHub over real HTTP, every request checked against GitHub's OpenAPI description."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from envs.github_client import ClientOptions, PyGithubClient
from tests.contract.fake_github import FakeGitHub
from tests.http_server import serving


@pytest.fixture
def fake_github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    with serving(fake.app()) as base:
        yield fake, base
    assert fake.violations == [], "requests GitHub's OpenAPI description rejects"


@pytest.fixture
def github(fake_github: tuple[FakeGitHub, str]) -> PyGithubClient:
    _, base = fake_github
    options = ClientOptions(
        base_url=base,
        retries=2,
        secondary_rate_wait=0.2,
        seconds_between_requests=0,
        seconds_between_writes=0,
        timeout=10,
    )
    return PyGithubClient.with_token("ghs_test_token", options)
