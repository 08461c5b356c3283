"""A stateful fake of the part of GitHub's REST API the service uses, over real HTTP.

Every request is first checked against GitHub's official OpenAPI description
(npm ``@octokit/openapi``) with openapi-core: a request GitHub would reject
(unknown path, wrong method, missing or mistyped body field) gets the 422
GitHub would send, and is recorded in :attr:`FakeGitHub.violations`, which
the fixture asserts empty. Faults (5xx, rate limits) can be injected per
route to test that nothing is lost.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import unquote

from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.testing import MockRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from envs.github.client import ClientOptions
from tests.contract.github_contract import openapi_description

API_HOST = "https://api.github.com"
RATE_LIMIT = 5000  # requests an hour, a token's or an installation's primary limit


@cache
def github_openapi() -> OpenAPI:
    # The description is GitHub's own and large; validating it again costs ~10 s for nothing.
    return OpenAPI.from_dict(openapi_description(), config=Config(spec_validator_cls=None))


def client_options(base_url: str, retries: int = 1) -> ClientOptions:
    """Our client's options against the fake: no politeness delays, short rate-limit waits."""
    return ClientOptions(
        base_url=base_url,
        retries=retries,
        secondary_rate_wait=0.2,
        seconds_between_requests=0,
        seconds_between_writes=0,
        timeout=10,
    )


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "injected fault"


@dataclass
class Comment:
    id: int
    repository: str
    issue: int
    body: str
    author: str
    reactions: list[str] = field(default_factory=list)


@dataclass
class Deployment:
    id: int
    repository: str
    sha: str
    environment: str
    description: str
    transient: bool
    production: bool
    statuses: list[dict[str, Any]] = field(default_factory=list)


class FakeGitHub:
    """State of the fake, shared between the HTTP handlers and the test."""

    bot = "preview-envs[bot]"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids = itertools.count(1000)
        self.comments: dict[int, Comment] = {}
        self.deployments: dict[int, Deployment] = {}
        self.roles: dict[tuple[str, str], str] = {}
        self.pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self.reviews: dict[tuple[str, int], list[tuple[str, str, str]]] = {}  # login, state, sha
        self.faults: list[Fault] = []
        self.violations: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[tuple[str, str]] = []  # (path, Authorization header)
        # GitHub App side: the app's public key verifies the JWTs the client signs.
        self.app_id: int | None = None
        self.app_public_key: str | None = None
        self.installations: dict[str, int] = {}
        self.issued_tokens: list[str] = []
        self.token_lifetime = timedelta(hours=1)  # GitHub's installation tokens live an hour
        self.not_modified: list[str] = []  # paths answered 304 to a matching If-None-Match
        self.deleted_environments: list[tuple[str, str]] = []
        self.may_delete_environments = True
        self._query: dict[str, str] = {}
        self._if_none_match: str | None = None
        self.rate_remaining = RATE_LIMIT
        self.rate_reset = int(time.time()) + 3600

    # -- test helpers -----------------------------------------------------------

    def fail(self, method: str, path: str, status: int, times: int = 1, **headers: str) -> None:
        self.faults.append(Fault(method, re.compile(path), status, times, headers))

    def comments_on(self, repository: str, issue: int) -> list[Comment]:
        return [
            c for c in self.comments.values() if c.repository == repository and c.issue == issue
        ]

    def deployments_of(self, repository: str) -> list[Deployment]:
        return [d for d in self.deployments.values() if d.repository == repository]

    # -- the HTTP side ----------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PATCH", "DELETE"])
            ]
        )

    async def _dispatch(self, request: Request) -> Response:
        response = await self._answer(request)
        # GitHub's rate-limit headers, on every answer as GitHub sends them.
        with self.lock:
            self.rate_remaining = max(0, self.rate_remaining - 1)
            for name, value in (
                ("x-ratelimit-limit", RATE_LIMIT),
                ("x-ratelimit-remaining", self.rate_remaining),
                ("x-ratelimit-used", RATE_LIMIT - self.rate_remaining),
                ("x-ratelimit-reset", self.rate_reset),
                ("x-ratelimit-resource", "core"),
            ):
                response.headers.setdefault(name, str(value))
        return response

    async def _answer(self, request: Request) -> Response:
        body = await request.body()
        # The path as sent, still percent-encoded: GitHub routes on it, and a name with
        # a slash (an environment "preview/pr-7") is one segment there.
        raw = request.scope.get("raw_path", b"").decode("ascii", "replace")
        method, path = request.method, raw or "/" + request.path_params["path"]
        with self.lock:
            self.requests.append((method, path))
            self.authorizations.append((path, request.headers.get("authorization", "")))
        problem = self._validate(request, method, path, body)
        if problem:
            with self.lock:
                self.violations.append(f"{method} {path}: {problem}")
            return JSONResponse({"message": "Validation Failed", "errors": [problem]}, 422)
        fault = self._fault(method, path)
        if fault is not None:
            return JSONResponse({"message": fault.message}, fault.status, headers=fault.headers)
        data = json.loads(body) if body else {}
        base = str(request.base_url).rstrip("/")
        with self.lock:
            self._query = dict(request.query_params)
            self._if_none_match = request.headers.get("if-none-match")
            return self._route(method, path, data, base)

    def _validate(self, request: Request, method: str, path: str, body: bytes) -> str | None:
        mock = MockRequest(
            API_HOST,
            method.lower(),
            path,
            args=dict(request.query_params),
            headers=dict(request.headers),
            data=body or None,
            content_type=request.headers.get("content-type", "application/json").split(";")[0],
        )
        try:
            github_openapi().validate_request(mock)
        except Exception as exc:
            detail = exc.__cause__ or exc
            return f"{type(exc).__name__}: {detail}"[:500]
        return None

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path.search(path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _route(self, method: str, path: str, data: dict[str, Any], base: str) -> Response:
        token = re.match(r"^/app/installations/(\d+)/access_tokens$", path)
        if token and method == "POST":
            return self._access_token(int(token.group(1)))
        installation = re.match(r"^/repos/([^/]+/[^/]+)/installation$", path)
        if installation and method == "GET":
            return self._installation(installation.group(1))
        if path == "/user" and method == "GET":  # a token's user: the bot, for these tests
            return JSONResponse({"login": self.bot, "id": 1, "type": "Bot"})
        if path == "/app" and method == "GET":
            if not self._verify_app_jwt():
                return JSONResponse({"message": "A JSON web token could not be decoded"}, 401)
            return JSONResponse({"id": self.app_id, "slug": self.bot.removesuffix("[bot]")})
        repo = re.match(r"^/repos/([^/]+/[^/]+)(/.*)?$", path)
        if not repo:
            return JSONResponse({"message": "Not Found"}, 404)
        repository, rest = repo.group(1), repo.group(2) or ""
        handlers = (
            (r"^/collaborators/([^/]+)/permission$", "GET", self._permission),
            (r"^/issues/(\d+)/comments$", "GET", self._list_comments),
            (r"^/issues/(\d+)/comments$", "POST", self._create_comment),
            (r"^/issues/comments/(\d+)$", "PATCH", self._edit_comment),
            (r"^/issues/comments/(\d+)/reactions$", "POST", self._react),
            (r"^/deployments$", "POST", self._create_deployment),
            (r"^/deployments/(\d+)/statuses$", "POST", self._deployment_status),
            (r"^/pulls/(\d+)$", "GET", self._pull),
            (r"^/pulls/(\d+)/reviews$", "GET", self._reviews),
            (r"^/pulls$", "GET", self._pulls),
            (r"^/environments/(.+)$", "DELETE", self._delete_environment),
        )
        for pattern, verb, handler in handlers:
            match = re.match(pattern, rest)
            if match and verb == method:
                return handler(repository, match.group(1) if match.groups() else "", data, base)
        return JSONResponse({"message": "Not Found (fake)"}, 404)

    def _verify_app_jwt(self) -> bool:
        import jwt

        _, header = self.authorizations[-1]
        if self.app_public_key is None or not header.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(header.removeprefix("Bearer "), self.app_public_key, ["RS256"])
        except jwt.PyJWTError:
            return False
        return str(claims.get("iss")) == str(self.app_id)

    def _installation(self, repository: str) -> Response:
        if not self._verify_app_jwt():
            return JSONResponse({"message": "A JSON web token could not be decoded"}, 401)
        if repository not in self.installations:
            return JSONResponse({"message": "Not Found"}, 404)
        installation_id = self.installations[repository]
        return JSONResponse(
            {"id": installation_id, "app_id": self.app_id, "account": {"login": "acme"}}
        )

    def _access_token(self, installation_id: int) -> Response:
        if not self._verify_app_jwt() or installation_id not in self.installations.values():
            return JSONResponse({"message": "Bad credentials"}, 401)
        token = f"ghs_installation_{len(self.issued_tokens)}"
        self.issued_tokens.append(token)
        expires = (datetime.now(UTC) + self.token_lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse({"token": token, "expires_at": expires, "permissions": {}}, 201)

    def _comment_json(self, comment: Comment, base: str) -> dict[str, Any]:
        return {
            "id": comment.id,
            "url": f"{base}/repos/{comment.repository}/issues/comments/{comment.id}",
            "html_url": f"https://github.com/{comment.repository}/pull/{comment.issue}"
            f"#issuecomment-{comment.id}",
            "body": comment.body,
            "user": {
                "login": comment.author,
                "type": "Bot" if comment.author == self.bot else "User",
            },
        }

    def _permission(self, repository: str, user: str, _: Any, __: str) -> Response:
        role = self.roles.get((repository, user))
        if role is None:
            return JSONResponse({"message": "Not Found"}, 404)
        base_permission = {"maintain": "write", "triage": "read"}.get(role, role)
        return JSONResponse({"permission": base_permission, "role_name": role, "user": None})

    def _list_comments(self, repository: str, issue: str, _: Any, base: str) -> Response:
        found = self.comments_on(repository, int(issue))
        return JSONResponse([self._comment_json(c, base) for c in found])

    def _create_comment(self, repository: str, issue: str, data: Any, base: str) -> Response:
        comment = Comment(next(self.ids), repository, int(issue), data["body"], self.bot)
        self.comments[comment.id] = comment
        return JSONResponse(self._comment_json(comment, base), 201)

    def _edit_comment(self, _: str, comment_id: str, data: Any, base: str) -> Response:
        comment = self.comments.get(int(comment_id))
        if comment is None:
            return JSONResponse({"message": "Not Found"}, 404)
        comment.body = data["body"]
        return JSONResponse(self._comment_json(comment, base))

    def _delete_environment(self, repository: str, name: str, _: Any, __: str) -> Response:
        if not self.may_delete_environments:  # the App lacks Administration: write
            return JSONResponse({"message": "Resource not accessible by integration"}, 403)
        self.deleted_environments.append((repository, unquote(name)))
        return Response(status_code=204)

    def _react(self, _: str, comment_id: str, data: Any, __: str) -> Response:
        comment = self.comments.get(int(comment_id))
        if comment is None:
            return JSONResponse({"message": "Not Found"}, 404)
        comment.reactions.append(data["content"])
        return JSONResponse({"id": next(self.ids), "content": data["content"]}, 201)

    def _create_deployment(self, repository: str, _: str, data: Any, base: str) -> Response:
        deployment = Deployment(
            next(self.ids),
            repository,
            data["ref"],
            data.get("environment", "production"),
            data.get("description", ""),
            bool(data.get("transient_environment")),
            bool(data.get("production_environment", True)),
        )
        self.deployments[deployment.id] = deployment
        return JSONResponse(
            {
                "id": deployment.id,
                "url": f"{base}/repos/{repository}/deployments/{deployment.id}",
                "sha": deployment.sha,
                "environment": deployment.environment,
            },
            201,
        )

    def _deployment_status(
        self, repository: str, deployment_id: str, data: Any, _: str
    ) -> Response:
        deployment = self.deployments.get(int(deployment_id))
        if deployment is None or deployment.repository != repository:
            return JSONResponse({"message": "Not Found"}, 404)
        deployment.statuses.append(dict(data))
        if data.get("auto_inactive", True) and data["state"] == "success":
            for other in self.deployments.values():
                if (
                    other.id != deployment.id
                    and other.environment == deployment.environment
                    and other.statuses
                    and other.statuses[-1]["state"] == "success"
                ):
                    other.statuses.append({"state": "inactive", "auto": True})
        return JSONResponse({"id": next(self.ids), "state": data["state"]}, 201)

    def _pull(self, repository: str, number: str, _: Any, base: str) -> Response:
        pull = self.pulls.get((repository, int(number)))
        if pull is None:
            return JSONResponse({"message": "Not Found"}, 404)
        return JSONResponse(self._pull_json(repository, int(number), pull, base))

    def _reviews(self, repository: str, number: str, _: Any, base: str) -> Response:
        found = [
            {
                "id": 500 + i,
                "node_id": f"PRR_{i}",
                "user": {"login": login, "id": 900 + i, "type": "User"},
                "body": "",
                "state": state,
                "commit_id": sha,
                "submitted_at": "2026-12-01T10:00:00Z",
                "html_url": f"https://github.com/{repository}/pull/{number}#pullrequestreview-{i}",
                "pull_request_url": f"{base}/repos/{repository}/pulls/{number}",
                "author_association": "MEMBER",
            }
            for i, (login, state, sha) in enumerate(self.reviews.get((repository, int(number)), []))
        ]
        return JSONResponse(found)

    def _pulls(self, repository: str, _: str, __: Any, base: str) -> Response:
        state = self._query.get("state", "open")
        found = [
            self._pull_json(repository, number, pull, base)
            for (repo, number), pull in sorted(self.pulls.items())
            if repo == repository and (state == "all" or pull["state"] == state)
        ]
        per_page = int(self._query.get("per_page", 30))
        page = int(self._query.get("page", 1))
        return self._conditional(
            f"/repos/{repository}/pulls", found[(page - 1) * per_page : page * per_page]
        )

    def _conditional(self, path: str, payload: Any) -> Response:
        """GitHub's conditional GET: a weak ETag of the body; 304 when the client has it."""
        body = json.dumps(payload, sort_keys=True)
        etag = f'W/"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'
        if self._if_none_match == etag:
            self.not_modified.append(path)
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})

    @staticmethod
    def _pull_json(repository: str, number: int, pull: dict[str, Any], base: str) -> dict[str, Any]:
        return {
            "number": number,
            "state": pull["state"],
            "url": f"{base}/repos/{repository}/pulls/{number}",
            "head": {"sha": pull["head_sha"], "ref": pull.get("branch", "feature")},
        }
