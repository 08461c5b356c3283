"""POST /promote with GitHub Actions OIDC tokens, offline: a local issuer's keys (JWKS over
real HTTP) sign tokens shaped like GitHub's (docs.github.com, "OIDC token claims"); the
service accepts a repository's own run and records it, and refuses everything else."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from envs.core.jobs import JobKind
from envs.github.oidc import OidcPolicy, OidcVerifier
from envs.github.webhook_app import ServiceConfig, StorePool, create_app
from envs.store import Store, open_store
from tests.http_server import serving

ROOT = Path(__file__).resolve().parents[2]
REPO = "acme/shop"
SHA = "c" * 40
IMAGE = "ghcr.io/acme/shop@sha256:" + "d" * 64
AUDIENCE = "preview-envs"


@dataclass
class Issuer:
    url: str
    key: rsa.RSAPrivateKey

    def token(self, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": "a1b2",
            "sub": f"repo:{REPO}:ref:refs/heads/feature",
            "repository": REPO,
            "repository_owner": "acme",
            "sha": SHA,
            "ref": "refs/heads/feature",
            "event_name": "push",
            "workflow": "CI",
            "job_workflow_ref": f"{REPO}/.github/workflows/ci.yml@refs/heads/feature",
            "run_id": "4242",
            "run_attempt": "1",
            "actor": "octocat",
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = {"keys": [public | {"kid": "k1", "use": "sig", "alg": "RS256"}]}

    async def keys(_: Any) -> JSONResponse:
        return JSONResponse(jwks)

    with serving(Starlette(routes=[Route("/.well-known/jwks", keys)])) as url:
        yield Issuer(url, key)


@pytest.fixture
def service(state_url: str, store: Store, issuer: Issuer) -> Iterator[httpx.Client]:
    policy = OidcPolicy(audience=AUDIENCE, issuer=issuer.url)
    config = ServiceConfig(b"secret", promote_token="shared-token", oidc=OidcVerifier(policy))
    app = create_app(StorePool(lambda: open_store(state_url), size=2), config)
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def promote(client: httpx.Client, token: str, **body: str) -> httpx.Response:
    sent = {"repository": REPO, "sha": SHA, "image": IMAGE} | body
    return client.post("/promote", json=sent, headers={"Authorization": f"Bearer {token}"})


def test_a_repositorys_own_run_promotes_and_is_recorded(
    service: httpx.Client, store: Store, issuer: Issuer
) -> None:
    answer = promote(service, issuer.token(), actor="someone-else-entirely")
    assert answer.status_code == 202, answer.text
    [job] = [j for j in store.queue.jobs() if j.kind is JobKind.PROMOTE]
    assert job.repository == REPO
    [entry] = [e for e in store.audit_entries() if e.action == "promote.accepted"]
    # The run GitHub signed, not the actor the body declares.
    assert entry.actor == f"github-actions:{REPO}/.github/workflows/ci.yml@refs/heads/feature#4242"
    assert entry.detail["auth"] == "github-oidc"
    assert (entry.detail["run_id"], entry.detail["actor"], entry.detail["sha"]) == (
        "4242",
        "octocat",
        SHA,
    )


def test_a_pull_request_run_proves_its_repository_not_the_head_commit(
    service: httpx.Client, store: Store, issuer: Issuer
) -> None:
    """On pull_request runs GitHub's token names the merge commit it made, never the head."""
    merge = "e" * 40
    token = issuer.token(sha=merge, event_name="pull_request", ref="refs/pull/7/merge")
    assert promote(service, token).status_code == 202
    [entry] = [e for e in store.audit_entries() if e.action == "promote.accepted"]
    assert (entry.detail["sha"], entry.detail["event"]) == (merge, "pull_request")


@pytest.mark.parametrize(
    ("claims", "status", "said"),
    [
        ({"repository": "mallory/shop"}, 403, "cannot promote for acme/shop"),
        ({"sha": "f" * 40}, 403, "not cccccccccccc"),
        ({"aud": "https://github.com/acme"}, 401, "Audience doesn't match"),
        ({"iss": "https://token.actions.example.invalid"}, 401, "Invalid issuer"),
        ({"exp": int(time.time()) - 3600}, 401, "Signature has expired"),
        ({"repository": None}, 401, "repository"),
    ],
)
def test_tokens_that_do_not_allow_this_promotion_are_refused(
    service: httpx.Client,
    store: Store,
    issuer: Issuer,
    claims: dict[str, Any],
    status: int,
    said: str,
) -> None:
    answer = promote(service, issuer.token(**claims))
    assert answer.status_code == status, answer.text
    assert said in answer.text
    assert [j for j in store.queue.jobs() if j.kind is JobKind.PROMOTE] == []
    refused = [e for e in store.audit_entries() if e.action == "promote.refused"]
    assert refused, "a refusal is evidence too"


def test_forged_tokens_are_refused(service: httpx.Client, store: Store, issuer: Issuer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert promote(service, issuer.token(key=other)).status_code == 401  # not the issuer's key
    _, payload, _ = issuer.token().split(".")
    none = jwt.utils.base64url_encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).decode()
    assert promote(service, f"{none}.{payload}.").status_code == 401  # "alg": "none"
    # A key confusion attempt: HMAC "signed" with the issuer's public key as the secret.
    public = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key())
    confused = jwt.api_jws.PyJWS().encode(
        payload=jwt.utils.base64url_decode(payload),
        key=public.encode() * 2,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert promote(service, confused).status_code == 401
    assert [j for j in store.queue.jobs() if j.kind is JobKind.PROMOTE] == []


def test_the_shared_token_still_works_and_says_it_is_the_weaker_one(
    service: httpx.Client, store: Store
) -> None:
    assert promote(service, "shared-token", actor="ci-bot").status_code == 202
    [entry] = [e for e in store.audit_entries() if e.action == "promote.accepted"]
    assert entry.actor == "ci-bot"
    assert entry.detail["auth"] == "shared-token"
    assert promote(service, "wrong").status_code == 401


def test_an_allow_list_of_workflows_refuses_the_others(state_url: str, issuer: Issuer) -> None:
    policy = OidcPolicy(
        audience=AUDIENCE, issuer=issuer.url, workflows=(f"{REPO}/.github/workflows/release.yml@",)
    )
    app = create_app(
        StorePool(lambda: open_store(state_url), size=1),
        ServiceConfig(b"secret", oidc=OidcVerifier(policy)),
    )
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        refused = promote(client, issuer.token())
        assert refused.status_code == 403
        assert "may not promote" in refused.text
        release = f"{REPO}/.github/workflows/release.yml@refs/heads/main"
        assert promote(client, issuer.token(job_workflow_ref=release)).status_code == 202
        assert promote(client, "any-shared-token").status_code == 401  # none configured


def test_the_shipped_workflow_step_promotes_with_the_runs_oidc_token(
    service: httpx.Client, store: Store, issuer: Issuer
) -> None:
    """The `run:` script of .github/examples/promote-image.yml, with no shared token: it asks
    the runner's token endpoint (as GitHub's runner serves it) for a token of our audience."""
    asked: list[tuple[str, str]] = []
    pull_request_run = issuer.token(sha="e" * 40, event_name="pull_request")

    async def runner_token(request: Any) -> JSONResponse:
        asked.append((request.headers.get("authorization", ""), request.query_params["audience"]))
        return JSONResponse({"count": 1, "value": pull_request_run})

    workflow = (ROOT / ".github" / "examples" / "promote-image.yml").read_text()
    steps = yaml.safe_load(workflow)["jobs"]["image"]["steps"]
    (step,) = [s for s in steps if s.get("name") == "Promote the digest for this commit"]
    runner = Starlette(routes=[Route("/token", runner_token)])
    with serving(runner) as runner_url:
        env = {
            "PATH": "/usr/bin:/bin",
            "URL": str(service.base_url).rstrip("/"),
            "TOKEN": "",  # the secret PREVIEW_PROMOTE_TOKEN is not set
            "AUDIENCE": step["env"]["AUDIENCE"],
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{runner_url}/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token",
            "REPOSITORY": REPO,
            "SHA": SHA,
            "IMAGE": IMAGE,
        }
        script = ["bash", "-euo", "pipefail", "-c", step["run"]]
        result = subprocess.run(script, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert asked == [("bearer runner-request-token", AUDIENCE)]
    assert "id-token" in yaml.safe_load(workflow)["permissions"]
    [entry] = [e for e in store.audit_entries() if e.action == "promote.accepted"]
    assert entry.detail["auth"] == "github-oidc"
    assert store.pull_requests.promotion(REPO, SHA) is not None
