"""Whether a PR gets an environment now: drafts, labels, forks and promotion. Pure.

Kept apart from the worker so every rule of the config's ``deploy`` section
is tested on its own, and so a reader finds in one place why a PR was not
deployed (the reason is what the sticky comment shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from envs.core.jobs import Promotion, PullRequest
from envs.core.spec import EnvironmentSpec, ForkPolicy


class Verdict(StrEnum):
    DEPLOY = "deploy"
    WAIT_FOR_IMAGE = "wait_for_image"
    NEEDS_APPROVAL = "needs_approval"
    SKIP = "skip"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    image: str | None = None


def decide(
    pr: PullRequest,
    spec: EnvironmentSpec,
    promotion: Promotion | None,
    requested: bool = False,
) -> Decision:
    """What to do for the PR's head commit.

    ``requested`` is a maintainer's explicit ``/preview up``: it overrides
    the draft and label rules, but never a repository's ``forks: never``. A
    fork's head deploys only under the approval recorded for it: that commit,
    and the image digest the approval covers (:mod:`envs.worker.approval`).
    """
    sha = pr.head_sha[:12]
    if pr.state != "open":
        return Decision(Verdict.SKIP, "the pull request is closed")
    if pr.fork and spec.deploy.forks is ForkPolicy.NEVER:
        return Decision(Verdict.SKIP, "pull requests from forks are never deployed (deploy.forks)")
    if not requested:
        if pr.draft and not spec.deploy.drafts:
            return Decision(
                Verdict.SKIP, "draft pull requests are not deployed; mark it ready for review"
            )
        label = spec.deploy.require_label
        if label and label not in pr.labels:
            return Decision(Verdict.SKIP, f"add the label `{label}` to get a preview")
    image = promotion.image if promotion is not None else None
    if pr.fork and not pr.approves(pr.head_sha, image):
        again = (
            f"commit {sha}'s image was promoted again with another digest"
            if pr.approved_sha == pr.head_sha
            else "pull request from a fork"
        )
        return Decision(
            Verdict.NEEDS_APPROVAL,
            f"{again}: a maintainer's `/preview up {sha}` approves commit {sha}",
        )
    if promotion is None:
        return Decision(
            Verdict.WAIT_FOR_IMAGE, f"waiting for CI to promote an image for commit {sha}"
        )
    return Decision(Verdict.DEPLOY, f"deploying commit {sha}", promotion.image)
