"""Our PyGithub client against the fake, every request validated by GitHub's OpenAPI description."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from envs.core.spec import Permission
from envs.github.client import (
    STICKY_MARKER,
    CachedResponse,
    GitHubRejected,
    GitHubUnavailable,
    PyGithubClient,
    permission_at_least,
)
from tests.contract.fake_github import Comment, FakeGitHub, client_options

REPO = "acme/shop"


def test_sticky_comment_is_created_once_then_edited(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = fake_github
    first = github.upsert_sticky(REPO, 7, None, "state: provisioning")
    # A fresh worker that lost the id finds the comment again by its marker.
    again = github.upsert_sticky(REPO, 7, None, "state: ready")
    assert first == again
    (comment,) = fake.comments_on(REPO, 7)
    assert comment.body == f"{STICKY_MARKER}\nstate: ready"
    # Someone deleted it: a new one is written instead of failing.
    del fake.comments[first]
    third = github.upsert_sticky(REPO, 7, first, "state: ready")
    assert third != first
    assert len(fake.comments_on(REPO, 7)) == 1


def test_a_marker_posted_by_someone_else_is_never_taken_for_the_sticky(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    """Anyone can paste the marker; a sticky found in their comment would be theirs to edit."""
    fake, _ = fake_github
    planted = Comment(1, REPO, 8, f"{STICKY_MARKER}\n✅ https://evil.example", "mallory")
    fake.comments[planted.id] = planted
    ours = github.upsert_sticky(REPO, 8, None, "state: ready")
    assert ours != planted.id
    assert planted.body == f"{STICKY_MARKER}\n✅ https://evil.example", "theirs, untouched"
    assert fake.comments[ours].author == fake.bot
    assert github.upsert_sticky(REPO, 8, None, "state: ready again") == ours


def test_a_sticky_that_cannot_be_edited_is_written_anew(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = fake_github
    first = github.upsert_sticky(REPO, 9, None, "state: provisioning")
    fake.fail("PATCH", rf"/issues/comments/{first}$", 403)
    second = github.upsert_sticky(REPO, 9, first, "state: ready")
    assert second != first
    assert fake.comments[second].body.endswith("state: ready")


def test_deployment_and_statuses(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = fake_github
    deployment_id = github.create_deployment(REPO, "a" * 40, "preview/pr-7", "Preview of #7")
    github.deployment_status(REPO, deployment_id, "in_progress", None, "deploying")
    github.deployment_status(REPO, deployment_id, "success", "https://pr-7.example.test", "ready")
    (deployment,) = fake.deployments_of(REPO)
    assert deployment.transient is True
    assert deployment.production is False
    assert [s["state"] for s in deployment.statuses] == ["in_progress", "success"]
    assert deployment.statuses[-1]["environment_url"] == "https://pr-7.example.test"


def test_permissions_and_reactions(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = fake_github
    fake.roles[(REPO, "maintainer")] = "maintain"
    fake.roles[(REPO, "reader")] = "read"
    assert github.permission(REPO, "maintainer") == "maintain"
    assert github.permission(REPO, "reader") == "read"
    assert github.permission(REPO, "stranger") == "none"
    assert permission_at_least("maintain", Permission.WRITE)
    assert not permission_at_least("read", Permission.WRITE)
    assert not permission_at_least("none", Permission.READ)
    comment_id = github.upsert_sticky(REPO, 3, None, "x")
    github.react(REPO, 3, comment_id, "eyes")
    assert fake.comments[comment_id].reactions == ["eyes"]


def test_server_errors_are_retried_then_reported_as_unavailable(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = fake_github
    fake.fail("POST", r"/issues/\d+/comments$", 502, times=1)
    github.reply(REPO, 4, "hello")  # PyGithub's retry absorbs one 502
    assert len(fake.comments_on(REPO, 4)) == 1
    fake.fail("POST", r"/issues/\d+/comments$", 503, times=10)
    with pytest.raises(GitHubUnavailable):
        github.reply(REPO, 4, "hello again")
    assert len(fake.comments_on(REPO, 4)) == 1


def test_a_token_clients_rate_limit_is_read_from_the_answers(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = fake_github
    assert github.rate_limits(datetime.now(UTC)) == []  # nothing asked yet: nothing known
    github.reply(REPO, 3, "one")
    github.reply(REPO, 3, "two")
    [seen] = github.rate_limits(datetime.now(UTC))
    assert (seen.account, seen.limit) == ("token", 5000)
    assert seen.remaining == fake.rate_remaining < 5000


def test_rate_limits_are_waited_out(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = fake_github
    fake.fail("POST", r"/deployments$", 429, times=1, **{"Retry-After": "1"})
    fake.fail(
        "POST",
        r"/deployments$",
        403,
        times=1,
        **{"Retry-After": "1"},
    )
    fake.faults[-1].message = "You have exceeded a secondary rate limit."
    deployment_id = github.create_deployment(REPO, "b" * 40, "preview/pr-5", "Preview of #5")
    assert deployment_id in fake.deployments


def test_refusals_are_permanent(
    github: PyGithubClient, fake_github: tuple[FakeGitHub, str]
) -> None:
    with pytest.raises(GitHubRejected, match="404"):
        github.pull_head(REPO, 999)


def test_open_pull_numbers(github: PyGithubClient, fake_github: tuple[FakeGitHub, str]) -> None:
    fake, _ = fake_github
    fake.pulls[(REPO, 1)] = {"state": "open", "head_sha": "a" * 40}
    fake.pulls[(REPO, 2)] = {"state": "closed", "head_sha": "b" * 40}
    assert github.open_pull_numbers(REPO) == {1}
    assert github.pull_head(REPO, 1) == "a" * 40


def test_the_fake_rejects_what_github_would_reject(fake_github: tuple[FakeGitHub, str]) -> None:
    """The contract check itself works: malformed requests are caught, not served."""
    import httpx

    fake, base = fake_github
    bad = [
        ("POST", f"/repos/{REPO}/issues/1/comments", {"bdy": "typo"}),
        ("POST", f"/repos/{REPO}/deployments", {"environment": "x"}),  # ref is required
        (
            "POST",
            f"/repos/{REPO}/deployments/1/statuses",
            {"state": "deployed"},
        ),  # not an enum value
        ("POST", f"/repos/{REPO}/issues/comments/1/reactions", {"content": "party"}),
        ("PUT", f"/repos/{REPO}/issues/1/comments", {"body": "x"}),
    ]
    for method, path, body in bad:
        response = httpx.request(method, base + path, json=body)
        assert response.status_code in (405, 422), (method, path, response.text)
    assert len(fake.violations) == 4  # the PUT never reaches the validator: 405 from routing
    assert fake.comments == {}
    assert fake.deployments == {}
    fake.violations.clear()


def test_github_app_auth_exchanges_a_signed_jwt_for_an_installation_token(
    fake_github: tuple[FakeGitHub, str],
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    fake, base = fake_github
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fake.app_public_key = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    fake.app_id = 4242
    fake.installations[REPO] = 77
    client = PyGithubClient.as_app(4242, private_pem, client_options(base))
    client.reply(REPO, 8, "hello from the app")
    client.reply(REPO, 8, "still the same token")
    assert fake.issued_tokens == ["ghs_installation_0"]
    assert [c.body for c in fake.comments_on(REPO, 8)] == [
        "hello from the app",
        "still the same token",
    ]
    repo_calls = [auth for path, auth in fake.authorizations if path.startswith(f"/repos/{REPO}/")]
    assert repo_calls[-1] == "token ghs_installation_0"  # the installation token, not the JWT
    # The installation's rate limit, from the headers of the last answer: no request for it.
    asked = len(fake.requests)
    [seen] = client.rate_limits(datetime.now(UTC))
    assert len(fake.requests) == asked
    owner = REPO.split("/", maxsplit=1)[0]
    assert (seen.account, seen.limit, seen.remaining) == (owner, 5000, fake.rate_remaining)
    assert seen.resets_at == datetime.fromtimestamp(fake.rate_reset, UTC)
    # A token about to expire is replaced before it is used.
    fake.token_lifetime = timedelta(seconds=5)
    client = PyGithubClient.as_app(4242, private_pem, client_options(base))
    client.reply(REPO, 9, "one")
    client.reply(REPO, 9, "two")
    assert fake.issued_tokens[1:] == ["ghs_installation_1", "ghs_installation_2"]
    # A repository the app is not installed on is a clear, permanent refusal.
    with pytest.raises(GitHubRejected, match="installation lookup"):
        client.reply("acme/elsewhere", 1, "x")


class MemoryCache:
    def __init__(self) -> None:
        self.entries: dict[str, CachedResponse] = {}

    def get(self, url: str) -> CachedResponse | None:
        return self.entries.get(url)

    def put(self, url: str, response: CachedResponse) -> None:
        self.entries[url] = response


def test_repeated_open_pr_listings_are_conditional_page_by_page(
    fake_github: tuple[FakeGitHub, str],
) -> None:
    fake, base = fake_github
    for number in range(1, 151):  # two pages of 100
        fake.pulls[(REPO, number)] = {"state": "open", "head_sha": "a" * 40}
    cache = MemoryCache()
    github = PyGithubClient.with_token("ghs_test", client_options(base), cache)
    assert github.open_pull_numbers(REPO) == set(range(1, 151))
    assert len(cache.entries) == 2
    assert not fake.not_modified
    # Nothing changed: both pages come back 304 (free of rate limit), same answer.
    assert github.open_pull_numbers(REPO) == set(range(1, 151))
    assert len(fake.not_modified) == 2
    # A PR on the second page closes: the first page is still 304, the second is fresh.
    fake.pulls[(REPO, 140)]["state"] = "closed"
    assert github.open_pull_numbers(REPO) == set(range(1, 151)) - {140}
    assert len(fake.not_modified) == 3
    assert fake.violations == []
