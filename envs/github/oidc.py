"""Promotions authenticated by GitHub Actions' OIDC token, per repository.

A shared bearer token lets anyone holding it promote any image for any
repository under any name. The OIDC token GitHub mints for a workflow run is
signed by GitHub and says which repository, commit, workflow and run asked:
a repository can only promote for itself, and the audit names the run.

Verification follows GitHub's guidance: the signature against the issuer's
JWKS, the issuer, the audience configured for this service, expiry, then the
claims against the request. PyJWT does the JOSE work; this module decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
ALGORITHMS = ["RS256"]  # what GitHub signs with; "none" and HMAC are never accepted


class PromotionRefused(Exception):
    """The token is valid but does not allow this promotion (HTTP 403)."""


class TokenInvalid(Exception):
    """Not a token this service accepts: signature, issuer, audience or expiry (HTTP 401)."""


@dataclass(frozen=True)
class WorkflowRun:
    """Who promoted, as GitHub signed it: for the journal and the audit."""

    repository: str
    sha: str
    ref: str
    event: str
    workflow_ref: str
    run_id: str
    run_attempt: str
    actor: str

    @property
    def name(self) -> str:
        return f"github-actions:{self.workflow_ref}#{self.run_id}"

    def evidence(self) -> dict[str, str]:
        return {
            "auth": "github-oidc",
            "repository": self.repository,
            "sha": self.sha,
            "ref": self.ref,
            "event": self.event,
            "workflow_ref": self.workflow_ref,
            "run_id": self.run_id,
            "run_attempt": self.run_attempt,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class OidcPolicy:
    audience: str
    issuer: str = GITHUB_ACTIONS_ISSUER
    jwks_url: str | None = None  # default: the issuer's /.well-known/jwks
    # Workflows allowed to promote (job_workflow_ref prefixes); empty: any of the repository's.
    workflows: tuple[str, ...] = ()

    @property
    def keys_at(self) -> str:
        return self.jwks_url or f"{self.issuer.rstrip('/')}/.well-known/jwks"


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class OidcVerifier:
    """Checks GitHub Actions OIDC tokens; the issuer's keys are fetched and cached by PyJWT."""

    def __init__(self, policy: OidcPolicy) -> None:
        self.policy = policy
        self._keys = jwt.PyJWKClient(policy.keys_at, cache_keys=True, lifespan=3600, timeout=10)

    def verify(self, token: str, repository: str, sha: str) -> WorkflowRun:
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.policy.audience,
                issuer=self.policy.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "repository", "sha"]},
                leeway=30,
            )
        except jwt.PyJWKClientError as exc:
            raise TokenInvalid(f"the token's signing key is not the issuer's: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise TokenInvalid(f"not an accepted OIDC token: {exc}") from None
        return allowed(claims, self.policy, repository, sha)


def allowed(
    claims: Mapping[str, Any], policy: OidcPolicy, repository: str, sha: str
) -> WorkflowRun:
    """Whether verified claims allow promoting ``sha`` of ``repository``. Pure.

    The repository must be the token's own. The commit must be the one the
    run was for, except on ``pull_request`` runs, where GitHub's token names
    the merge commit it made, never the head that CI built: there the
    repository (and the allowed workflows) are the proof, and the audit keeps
    both SHAs.
    """
    run = WorkflowRun(
        repository=str(claims.get("repository", "")),
        sha=str(claims.get("sha", "")),
        ref=str(claims.get("ref", "")),
        event=str(claims.get("event_name", "")),
        workflow_ref=str(claims.get("job_workflow_ref") or claims.get("workflow_ref") or ""),
        run_id=str(claims.get("run_id", "")),
        run_attempt=str(claims.get("run_attempt", "")),
        actor=str(claims.get("actor", "")),
    )
    if run.repository.lower() != repository.lower():
        raise PromotionRefused(
            f"a token of {run.repository} cannot promote for {repository}: each repository"
            " promotes its own images"
        )
    if not run.event.startswith("pull_request") and run.sha != sha:
        raise PromotionRefused(
            f"the token is for commit {run.sha[:12]}, not {sha[:12]}: promote from the run"
            " that built it"
        )
    if policy.workflows and not any(run.workflow_ref.startswith(w) for w in policy.workflows):
        raise PromotionRefused(
            f"workflow {run.workflow_ref or '(none)'} may not promote; allowed:"
            f" {', '.join(policy.workflows)}"
        )
    return run
