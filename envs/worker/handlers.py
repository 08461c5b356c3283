"""The services and helpers every kind of job shares; each kind's own work is in envs.worker.kinds.

Every handler is safe to run twice: a worker killed mid-job is replaced by
another that runs the same job again, so each step either converges
(lifecycle up/down) or checks before acting (sticky comment by marker,
deployment per SHA, status posted once). Reporting never blocks the work:
the state that matters lives in the store, and a REPORT job (retried with
backoff through a GitHub outage) brings the PR up to date from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from pydantic import ValidationError

from envs.core.clock import Clock
from envs.core.errors import ConfigError, OperationFailed
from envs.core.jobs import Job, JobStatus, NewJob, Promotion, PullRequest
from envs.core.model import (
    Environment,
    EnvironmentKey,
    EnvironmentStatus,
    OperationKind,
    OperationResult,
)
from envs.core.payloads import Deploy, Payload, PullRequestSnapshot, Report, Teardown, read
from envs.core.spec import EnvironmentSpec, PromotionMode
from envs.environments.lifecycle import Lifecycle
from envs.environments.registry import RegistryClient, RegistryError, promoted_tag
from envs.environments.seed_run import SeedPlace
from envs.github.client import GitHubPort, GitHubRejected, GitHubUnavailable
from envs.github.report import DEPLOYMENT_STATE, Situation, environment_name, seed_line, sticky_body
from envs.store import Store
from envs.worker.failures import Permanent, Transient
from envs.worker.kinds import KINDS
from envs.worker.policy import Verdict, decide
from stacks.errors import StackLocked

log = logging.getLogger(__name__)

SpecSource = Callable[[str], EnvironmentSpec]


class Handlers:
    def __init__(
        self,
        store: Store,
        lifecycle: Lifecycle,
        github: GitHubPort,
        specs: SpecSource,
        clock: Clock,
        registry: RegistryClient | None = None,
        seeding: SeedPlace | None = None,
    ) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self.github = github
        self.specs = specs
        self.clock = clock
        self.registry = registry
        self.seeding = seeding

    def run(self, job: Job) -> None:
        """Run ``job`` through its kind's module, its payload read into the kind's model."""
        try:
            payload = read(job.kind, job.payload)
        except ValidationError as exc:
            raise Permanent(f"{job.kind.value} job {job.id} has no usable payload: {exc}") from exc
        try:
            KINDS[job.kind](self, job, payload)
        except GitHubUnavailable as exc:
            raise Transient(str(exc)) from exc
        except GitHubRejected as exc:
            raise Permanent(str(exc)) from exc
        except ConfigError as exc:
            raise Permanent.of(exc, "configuration error: ") from exc

    # -- helpers ------------------------------------------------------------------

    def enqueue(self, key: EnvironmentKey, payload: Payload) -> None:
        job = NewJob(payload.kind, key.repository, key.pr_number, payload.dump())
        self.store.queue.enqueue(job, self.clock())

    def spec_of(self, key: EnvironmentKey) -> EnvironmentSpec:
        """The repository's spec; a ConfigError fails the job and the PR is told why."""
        return self.specs(key.repository)

    def save_snapshot(
        self, key: EnvironmentKey, snap: PullRequestSnapshot, closed: bool = False
    ) -> PullRequest:
        """Record the PR as a delivery showed it; a new head loses a fork's approval."""
        previous = self.store.pull_requests.get(key)
        same_head = previous is not None and previous.head_sha == snap.head_sha
        pushed = snap.updated_at
        if same_head and previous is not None and previous.head_pushed_at is not None:
            pushed = previous.head_pushed_at  # the delivery that first showed this head
        kept = previous if previous is not None and same_head else None
        pr = PullRequest(
            repository=key.repository,
            pr_number=key.pr_number,
            state="closed" if closed else snap.state,
            head_sha=snap.head_sha,
            branch=snap.branch,
            author=snap.author,
            draft=snap.draft,
            fork=snap.fork,
            labels=snap.labels,
            updated_at=self.clock(),
            # A new push to a fork PR needs a maintainer's approval again.
            approved_sha=kept.approved_sha if kept else None,
            approved_image=kept.approved_image if kept else None,
            head_pushed_at=pushed,
        )
        return self.store.pull_requests.save(pr)

    def consider(self, pr: PullRequest, actor: str, requested: bool = False) -> str:
        """Queue a deploy if the PR should run its head now; return why or why not."""
        spec = self.spec_of(pr.key)
        promotion = self.promotion_for(pr, spec)
        decision = decide(pr, spec, promotion, requested=requested)
        env = self.store.get(pr.key)
        already_running = (
            env is not None
            and env.status is EnvironmentStatus.READY
            and (env.head_sha, env.image) == (pr.head_sha, decision.image)
        )
        if decision.verdict is Verdict.DEPLOY and already_running and not requested:
            self.enqueue(pr.key, Report())  # a repeated signal: nothing to roll out
        elif decision.verdict is Verdict.DEPLOY:
            if pr.fork and pr.approved_image is None:
                self._bind_approval(pr, decision.image)
            assert decision.image is not None  # a DEPLOY verdict names its image
            self.enqueue(pr.key, Deploy(sha=pr.head_sha, image=decision.image, actor=actor))
        elif decision.verdict is Verdict.SKIP:
            if env is not None and env.status.is_live:
                self.enqueue(pr.key, Teardown(reason=decision.reason, actor=actor))
            self.enqueue(pr.key, Report(note=decision.reason))
        else:
            if decision.verdict is Verdict.NEEDS_APPROVAL:
                detail = {"sha": pr.head_sha, "image": promotion.image if promotion else None}
                self.store.audit(actor, "fork.unapproved", self.clock(), pr.key, detail)
            awaiting = decision.verdict is Verdict.NEEDS_APPROVAL
            self.enqueue(pr.key, Report(note=decision.reason, awaiting=awaiting))
        return decision.reason

    def _bind_approval(self, pr: PullRequest, image: str | None) -> PullRequest:
        """Pin a fork PR's approval to the digest its first deploy uses: another needs approval."""
        bound = self.store.pull_requests.save(replace(pr, approved_image=image))
        detail = {"sha": pr.head_sha, "image": image}
        self.store.audit("preview-envs", "fork.approval_bound", self.clock(), pr.key, detail)
        return bound

    def promotion_for(self, pr: PullRequest, spec: EnvironmentSpec) -> Promotion | None:
        """The image promoted for the PR's head: recorded, or (tag mode) the tag's digest now."""
        found = self.store.pull_requests.promotion(pr.repository, pr.head_sha)
        if found is not None or spec.image.promotion is not PromotionMode.TAG:
            return found
        if self.registry is None:
            return None
        tag = promoted_tag(spec.image.tag_template, pr.head_sha, pr.pr_number)
        try:
            digest = self.registry.digest(spec.image.repository, tag)
        except RegistryError as exc:
            raise Transient(f"resolving {spec.image.repository}:{tag}: {exc}") from exc
        if digest is None:
            return None  # CI has not pushed it (yet); a later signal asks again
        promotion = Promotion(
            pr.repository,
            pr.head_sha,
            f"{spec.image.repository}@{digest}",
            f"tag {tag}",
            self.clock(),
        )
        return self.store.pull_requests.promote(promotion)

    def unlocking(self, job: Job, operation: Callable[[], Environment]) -> Environment:
        """Run a lifecycle operation; if a dead worker's lock is in the way, clear it once.

        Only locks whose every unfinished journal entry was run by a job that
        no live lease covers are cleared: a worker holds its job's lease for
        as long as it runs the operation, so an expired lease means the
        process that took the lock is gone. A lock taken by a person's
        ``previewctl`` (no job) is left for them or for gc.
        """
        try:
            return operation()
        except OperationFailed as exc:
            if not isinstance(exc.__cause__, StackLocked) or not self._lock_abandoned(job):
                raise
        env = self.store.require(job.key)
        log.warning("%s: releasing the lock a dead worker left on %s", job.key, env.stack)
        self.lifecycle.release_abandoned(
            job.key, env.stack, "abandoned: its worker died; the lock was released"
        )
        return operation()

    def _lock_abandoned(self, job: Job) -> bool:
        now = self.clock()
        running = [
            op
            for op in self.store.operations(job.repository, job.pr_number, limit=50)
            if op.result is OperationResult.RUNNING
        ]
        if not running:
            return False
        for op in running:
            if op.job_id is None:
                return False  # a person's previewctl, or gc: not ours to judge
            holder = self.store.queue.get(op.job_id)
            alive = (
                holder is not None
                and holder.id != job.id
                and holder.status is JobStatus.RUNNING
                and holder.lease_expires_at is not None
                and holder.lease_expires_at > now
            )
            if alive:
                return False
        return True

    def react_done(self, job: Job, comment_id: int | None, content: str) -> None:
        """React on the comment that asked for the job, if one did; an outage only logs."""
        if comment_id is not None:
            try:
                self.github.react(job.repository, job.pr_number, int(comment_id), content)
            except GitHubUnavailable:
                log.warning("could not react to comment %s; the sticky comment has it", comment_id)

    def situation(
        self,
        key: EnvironmentKey,
        note: str | None = None,
        error: str | None = None,
        awaiting: bool = False,
    ) -> Situation:
        last_good = next(
            (
                op
                for op in self.store.operations(key.repository, key.pr_number, limit=20)
                if op.kind is OperationKind.UP and op.result is OperationResult.SUCCEEDED
            ),
            None,
        )
        seeded = next(
            (
                entry
                for entry in self.store.audit_entries(key.repository, key.pr_number, limit=50)
                if entry.action.startswith("seed.")
            ),
            None,
        )
        return Situation(
            self.store.get(key),
            self.store.pull_requests.get(key),
            note,
            error,
            self.clock(),
            last_good,
            seed_line(seeded),
            awaiting,
        )

    def sync(
        self,
        key: EnvironmentKey,
        note: str | None = None,
        error: str | None = None,
        pending_sha: str | None = None,
        awaiting: bool = False,
    ) -> None:
        """Bring the sticky comment and the GitHub deployment in line with the store."""
        situation = self.situation(key, note, error, awaiting)
        links = self.store.pull_requests.links(key)
        comment_id = self.github.upsert_sticky(
            key.repository, key.pr_number, links.comment_id, sticky_body(situation)
        )
        links = self.store.pull_requests.save_links(replace(links, comment_id=comment_id))
        env = situation.environment
        sha = pending_sha or (env.head_sha if env is not None else None)
        if pending_sha is not None:
            state = "in_progress"
        elif env is not None:
            state = DEPLOYMENT_STATE[env.status]
        else:
            state = None
        if sha and state and state != "inactive" and links.deployment_sha != sha:
            deployment_id = self.github.create_deployment(
                key.repository, sha, environment_name(key), f"Preview of #{key.pr_number}"
            )
            links = self.store.pull_requests.save_links(
                replace(
                    links, deployment_id=deployment_id, deployment_sha=sha, deployment_state=None
                )
            )
        if links.deployment_id is not None and state and state != links.deployment_state:
            url = env.url if env is not None and state == "success" else None
            description = (note or (env.last_error if env else None) or state)[:140]
            self.github.deployment_status(
                key.repository, links.deployment_id, state, url, description
            )
            serving = links.deployment_id if state == "success" else links.serving_deployment_id
            links = self.store.pull_requests.save_links(
                replace(links, deployment_state=state, serving_deployment_id=serving)
            )
        retired = links.serving_deployment_id
        if state == "inactive" and retired is not None and retired != links.deployment_id:
            # After a failed rollout the version that served has its own deployment:
            # GitHub would keep showing it active, so it is retired explicitly.
            self.github.deployment_status(key.repository, retired, "inactive", None, "removed")
        if state == "inactive" and retired is not None:
            self.store.pull_requests.save_links(replace(links, serving_deployment_id=None))
