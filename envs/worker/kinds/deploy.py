"""Roll out one commit's promoted image: the open head, or a version that served before."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from envs.core.errors import OperationFailed
from envs.core.jobs import Job, PullRequest
from envs.core.payloads import Deploy as DeployPayload
from envs.core.payloads import Report, Seed
from envs.core.spec import SeedMode
from envs.environments.lifecycle import UpRequest
from envs.environments.seed_run import seeded_since_created
from envs.github.client import GitHubRejected, GitHubUnavailable
from envs.worker.failures import Permanent, Transient
from stacks.errors import RolloutNeverSucceeds

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers

log = logging.getLogger(__name__)


def run(handlers: Handlers, job: Job, payload: DeployPayload) -> None:
    sha, image = payload.sha, payload.image
    pr = handlers.store.pull_requests.get(job.key)
    if pr is None or pr.state != "open" or (pr.head_sha != sha and not payload.rollback):
        log.info("deploy of %s for %s skipped: no longer the open head", sha[:12], job.key)
        return
    if pr.fork and not payload.rollback and not pr.approves(sha, image):
        # Only a decision that saw the approval queues a fork's deploy; a job that
        # reaches here without one (a re-promoted digest, a stale job) deploys nothing.
        detail = {"sha": sha, "image": image, "approved_sha": pr.approved_sha}
        handlers.store.audit("preview-envs", "fork.unapproved", handlers.clock(), job.key, detail)
        log.warning("deploy of %s for %s refused: not the approved commit/image", sha, job.key)
        return
    spec = handlers.spec_of(job.key)
    request = UpRequest(
        job.repository,
        job.pr_number,
        pr.branch,
        sha,
        image,
        payload.actor,
        runner=f"job:{job.id}",
        evidence=_evidence(handlers, pr, payload),
    )
    # "Deploying" goes to the PR while the engine works, not before it: GitHub asks
    # for a second between writes, and the start report makes three.
    starting = threading.Thread(target=_report_start, args=(handlers, job, sha), daemon=True)
    starting.start()
    try:
        handlers.unlocking(job, lambda: handlers.lifecycle.up(request, spec))
    except OperationFailed as exc:
        handlers.enqueue(job.key, Report())
        if isinstance(exc.__cause__, RolloutNeverSucceeds):
            # The same image fails the same way: say why once, free the worker, wait
            # for a new push (or /preview redeploy) instead of five attempts.
            raise Permanent.of(exc) from exc
        raise Transient.of(exc) from exc
    finally:
        starting.join()  # the REPORT job below must come after it
    handlers.enqueue(job.key, Report())
    if spec.seed.mode is not SeedMode.NONE and not seeded_since_created(handlers.store, job.key):
        handlers.enqueue(job.key, Seed(actor=request.actor))
    handlers.react_done(job, payload.comment_id, "rocket")


def _report_start(handlers: Handlers, job: Job, sha: str) -> None:
    try:
        handlers.sync(job.key, note=f"deploying commit {sha[:12]}", pending_sha=sha)
    except Exception as exc:  # the REPORT job after the deploy brings GitHub in line
        log.warning("could not report the start of %s: %s", job.key, exc)


def _evidence(handlers: Handlers, pr: PullRequest, payload: DeployPayload) -> dict[str, object]:
    """What an auditor asks of a deploy besides what and when: who asked for it (a
    comment's author, whose permission its ``command.accepted`` entry holds), which CI run
    promoted the image, and for a fork the commit and digest a maintainer approved."""
    promotion = handlers.store.pull_requests.promotion(pr.repository, payload.sha)
    evidence: dict[str, object] = {
        "requested_by": payload.actor,
        "trigger": "comment" if payload.comment_id else "pull_request",
        "rollback": payload.rollback,
        "pr_author": pr.author,
        "promoted_by": promotion.promoted_by if promotion else None,
        "promoted_at": promotion.promoted_at.isoformat() if promotion else None,
    }
    if payload.comment_id:
        evidence["comment_id"] = payload.comment_id
    if pr.fork:
        evidence |= {"fork_approved_sha": pr.approved_sha, "fork_approved_image": pr.approved_image}
    try:
        evidence["approving_reviewers"] = handlers.github.approvals(pr.repository, pr.pr_number)
    except (GitHubUnavailable, GitHubRejected) as exc:  # evidence, not a reason to stop
        evidence["approving_reviewers"] = f"unknown: {exc}"[:300]
    return evidence
