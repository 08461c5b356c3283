"""Everything the service asks of GitHub, through PyGithub, behind one small interface.

The worker sees :class:`GitHubPort` only, so the reporting and command logic
can be driven by tests over a fake GitHub HTTP server with the real client
in between. Failures are sorted here: rate limits, 5xx and network errors
are :class:`GitHubUnavailable` (the job is retried later, nothing is lost);
anything else GitHub refuses is :class:`GitHubRejected` (retrying would not
help). PyGithub's own retry already waits out secondary rate limits and 5xx
for a while before we see either.

Reads that are repeated with the same answer most of the time (the cleanup
cron's open-PR listing, every few minutes per repository) are conditional
when a :class:`ResponseCache` is given: GitHub answers 304 without counting
it against the rate limit, and the stored body is used.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import requests
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry

from envs.core.etags import CachedResponse, ResponseCache
from envs.core.rate_limits import RateLimit
from envs.core.spec import Permission

STICKY_MARKER = "<!-- preview-envs:sticky -->"
_RANK = {p.value: i for i, p in enumerate(Permission)}  # read < triage < write < maintain < admin
_PAGE = 100  # GitHub's largest page


class GitHubUnavailable(Exception):
    """GitHub could not answer now (outage, rate limit); try again later."""


class GitHubRejected(Exception):
    """GitHub refused the request; repeating it will not help."""


def permission_at_least(granted: str, needed: Permission) -> bool:
    """Whether a role GitHub reports (``role_name``) reaches ``needed``; unknown roles do not."""
    return granted in _RANK and _RANK[granted] >= _RANK[needed.value]


class GitHubPort(Protocol):
    def permission(self, repository: str, user: str) -> str: ...

    def react(self, repository: str, pr_number: int, comment_id: int, content: str) -> None: ...

    def upsert_sticky(
        self, repository: str, pr_number: int, comment_id: int | None, body: str
    ) -> int: ...

    def reply(self, repository: str, pr_number: int, body: str) -> None: ...

    def create_deployment(
        self, repository: str, sha: str, environment: str, description: str
    ) -> int: ...

    def deployment_status(
        self,
        repository: str,
        deployment_id: int,
        state: str,
        environment_url: str | None,
        description: str,
    ) -> None: ...

    def pull_head(self, repository: str, pr_number: int) -> str: ...

    def open_pull_numbers(self, repository: str) -> set[int]: ...

    def delete_environment(self, repository: str, environment: str) -> bool: ...

    def rate_limits(self, now: datetime) -> list[RateLimit]: ...

    def approvals(self, repository: str, pr_number: int) -> list[dict[str, str]]: ...


@dataclass(frozen=True)
class ClientOptions:
    base_url: str = "https://api.github.com"
    retries: int = 5
    secondary_rate_wait: float = 60.0
    seconds_between_requests: float = 0.25
    seconds_between_writes: float = 1.0
    timeout: float = 15.0


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except GithubException as exc:
        transient = (
            exc.status >= 500
            or exc.status == 429
            or (exc.status == 403 and "rate limit" in str(exc.data).lower())
        )
        message = f"GitHub {exc.status} on {what}: {_message(exc)}"
        raise (GitHubUnavailable if transient else GitHubRejected)(message) from exc
    except requests.RequestException as exc:  # connection refused, reset, retries exhausted
        raise GitHubUnavailable(f"GitHub unreachable on {what}: {type(exc).__name__}") from exc


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])[:300]
    return str(data)[:300]


class PyGithubClient:
    """GitHubPort over PyGithub; one authenticated ``Github`` per repository."""

    def __init__(
        self,
        connect: Callable[[str], Github],
        identity: Callable[[], str],
        cache: ResponseCache | None = None,
        account: Callable[[str], str] = lambda _repository: "token",
    ) -> None:
        self._connect = connect
        self._identity = identity
        self._account = account
        self._login: str | None = None
        self._clients: dict[str, Github] = {}
        self._lock = threading.Lock()
        self.cache = cache

    def login(self) -> str:
        """The login our comments are written by: the sticky comment is only ever ours."""
        with self._lock:
            if self._login is None:
                with _translated("who this client is"):
                    self._login = self._identity()
            return self._login

    @classmethod
    def with_token(
        cls, token: str, options: ClientOptions, cache: ResponseCache | None = None
    ) -> PyGithubClient:
        client = _github(Auth.Token(token), options)
        return cls(lambda _repository: client, lambda: str(client.get_user().login), cache)

    @classmethod
    def as_app(
        cls,
        app_id: int,
        private_key: str,
        options: ClientOptions,
        cache: ResponseCache | None = None,
    ) -> PyGithubClient:
        """Installation tokens per repository's installation, refreshed by PyGithub."""
        app_auth = Auth.AppAuth(app_id, private_key)
        integration = GithubIntegration(
            auth=app_auth, base_url=options.base_url, retry=_retry(options)
        )

        def connect(repository: str) -> Github:
            owner, name = repository.split("/", 1)
            with _translated(f"installation lookup for {repository}"):
                installation = integration.get_repo_installation(owner, name)
            return _github(app_auth.get_installation_auth(installation.id), options)

        # An app comments as its bot user, "<slug>[bot]"; each installation (one per
        # owner) has its own rate limit.
        return cls(
            connect,
            lambda: f"{integration.get_app().slug}[bot]",
            cache,
            account=lambda repository: repository.split("/", 1)[0],
        )

    def rate_limits(self, now: datetime) -> list[RateLimit]:
        """The primary rate limit of each account used so far, from the last answer's headers.

        No request is made: an account not yet asked anything is left out.
        """
        with self._lock:
            clients = {self._account(repo): gh for repo, gh in self._clients.items()}
        seen = []
        for account, gh in sorted(clients.items()):
            remaining, limit = gh.requester.rate_limiting
            if limit < 0:
                continue
            resets = datetime.fromtimestamp(gh.requester.rate_limiting_resettime, UTC)
            seen.append(RateLimit(account, remaining, limit, resets, now))
        return seen

    def _gh(self, repository: str) -> Github:
        with self._lock:
            if repository not in self._clients:
                self._clients[repository] = self._connect(repository)
            return self._clients[repository]

    def _repo(self, repository: str):  # type: ignore[no-untyped-def]
        return self._gh(repository).get_repo(repository)

    def permission(self, repository: str, user: str) -> str:
        with _translated(f"permission of {user}"):
            try:
                role = self._repo(repository).get_collaborator_role_name(user)
            except GithubException as exc:
                if exc.status == 404:  # not a collaborator, or no such user
                    return "none"
                raise
            if role in _RANK:
                return str(role)
            # A custom role: fall back to the base permission GitHub maps it to.
            return str(self._repo(repository).get_collaborator_permission(user))

    def react(self, repository: str, pr_number: int, comment_id: int, content: str) -> None:
        with _translated(f"reaction on comment {comment_id}"):
            comment = self._repo(repository).get_issue(pr_number).get_comment(comment_id)
            comment.create_reaction(content)

    def upsert_sticky(
        self, repository: str, pr_number: int, comment_id: int | None, body: str
    ) -> int:
        text = f"{STICKY_MARKER}\n{body}"
        me = self.login()
        with _translated(f"sticky comment on #{pr_number}"):
            issue = self._repo(repository).get_issue(pr_number)
            if comment_id is None:
                # Ours by author, not by marker: anyone can post the marker, and a sticky
                # found in their comment would be theirs to edit (a fake URL on the PR).
                comment_id = next(
                    (
                        c.id
                        for c in issue.get_comments()
                        if c.user is not None
                        and c.user.login == me
                        and STICKY_MARKER in (c.body or "")
                    ),
                    None,
                )
            if comment_id is not None:
                try:
                    issue.get_comment(comment_id).edit(text)
                    return comment_id
                except GithubException as exc:
                    # Deleted, or not ours to edit (locked, hidden): write a new one; the
                    # report must not fail the deploy it reports.
                    if exc.status not in (403, 404, 410):
                        raise
            return int(issue.create_comment(text).id)

    def reply(self, repository: str, pr_number: int, body: str) -> None:
        with _translated(f"reply on #{pr_number}"):
            self._repo(repository).get_issue(pr_number).create_comment(body)

    def create_deployment(
        self, repository: str, sha: str, environment: str, description: str
    ) -> int:
        with _translated(f"deployment of {sha[:12]}"):
            deployment = self._repo(repository).create_deployment(
                ref=sha,
                environment=environment,
                description=description[:140],
                auto_merge=False,
                required_contexts=[],
                transient_environment=True,
                production_environment=False,
            )
            return int(deployment.id)

    def deployment_status(
        self,
        repository: str,
        deployment_id: int,
        state: str,
        environment_url: str | None,
        description: str,
    ) -> None:
        with _translated(f"deployment {deployment_id} status {state}"):
            deployment = self._repo(repository).get_deployment(deployment_id)
            if environment_url:
                deployment.create_status(
                    state,
                    description=description[:140],
                    environment_url=environment_url,
                    auto_inactive=True,
                )
            else:
                deployment.create_status(state, description=description[:140])

    def pull_head(self, repository: str, pr_number: int) -> str:
        with _translated(f"head of #{pr_number}"):
            return str(self._repo(repository).get_pull(pr_number).head.sha)

    def approvals(self, repository: str, pr_number: int) -> list[dict[str, str]]:
        """Who approves the PR now, and the commit each approved: for a deploy's audit."""
        with _translated(f"reviews of #{pr_number}"):
            pull = self._repo(repository).get_pull(pr_number)
            reviews = [(r.user.login, r.state, r.commit_id) for r in pull.get_reviews()]
        return approving(reviews)

    def delete_environment(self, repository: str, environment: str) -> bool:
        """Delete a PR's GitHub environment; False if it is gone or not ours to delete.

        Deleting needs the App's *Administration: write*; without it GitHub
        answers 403 and the environment stays (its deployments are inactive).
        """
        with _translated(f"environment {environment}"):
            try:
                self._repo(repository).delete_environment(environment)
            except GithubException as exc:
                if exc.status in (403, 404):
                    return False
                raise
            return True

    def open_pull_numbers(self, repository: str) -> set[int]:
        with _translated(f"open pull requests of {repository}"):
            numbers: set[int] = set()
            page = 1
            while True:  # page by page, each conditional: a 304 keeps that page's numbers
                found = self._open_pulls_page(repository, page)
                numbers.update(found)
                if len(found) < _PAGE:
                    return numbers
                page += 1

    def _open_pulls_page(self, repository: str, page: int) -> list[int]:
        url = f"/repos/{repository}/pulls?state=open&per_page={_PAGE}&page={page}"
        cached = self.cache.get(url) if self.cache else None
        headers = {"If-None-Match": cached.etag} if cached else {}
        requester = self._gh(repository).requester
        status, response_headers, output = requester.requestJson("GET", url, headers=headers)
        if status == 304 and cached is not None:
            return [int(n) for n in json.loads(cached.body)]
        if status >= 400:
            raise requester.createException(status, response_headers, json.loads(output or "{}"))
        numbers = [int(pull["number"]) for pull in json.loads(output)]
        etag = response_headers.get("etag")
        if etag and self.cache:
            self.cache.put(url, CachedResponse(etag, json.dumps(numbers)))
        return numbers


def _retry(options: ClientOptions) -> GithubRetry:
    return GithubRetry(
        total=options.retries,
        backoff_factor=0.5,
        secondary_rate_wait=options.secondary_rate_wait,
    )


def _github(auth: Auth.Auth, options: ClientOptions) -> Github:
    return Github(
        auth=auth,
        base_url=options.base_url,
        retry=_retry(options),
        timeout=int(options.timeout),
        seconds_between_requests=options.seconds_between_requests,
        seconds_between_writes=options.seconds_between_writes,
        lazy=True,
    )


def approving(reviews: list[tuple[str, str, str]]) -> list[dict[str, str]]:
    """Reviewers whose latest deciding review approves, with the commit they approved. Pure.

    GitHub's rule: a COMMENTED review changes nothing; a later CHANGES_REQUESTED
    or DISMISSED review replaces an approval.
    """
    latest: dict[str, tuple[str, str]] = {}
    for login, state, sha in reviews:  # oldest first, as GitHub lists them
        if state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[login] = (state, sha)
    return [
        {"login": login, "commit": sha}
        for login, (state, sha) in sorted(latest.items())
        if state == "APPROVED"
    ]
