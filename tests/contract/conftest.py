"""The real PyGithub client pointed at the fake GitHub (the fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from envs.github_client import ClientOptions, PyGithubClient
from tests.contract.fake_github import FakeGitHub


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
