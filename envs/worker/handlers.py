"""What the worker does with each kind of job.

Every handler is safe to run twice: a worker killed mid-job is replaced by
another that runs the same job again, so each step either converges
(lifecycle up/down) or checks before acting (sticky comment by marker,
deployment per SHA, status posted once). Reporting never blocks the work:
the state that matters lives in the store, and a REPORT job (retried with
backoff through a GitHub outage) brings the PR up to date from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envs.core.clock import Clock
from envs.core.errors import ConfigError, OperationFailed, public_text
from envs.core.jobs import Job, JobKind, JobStatus, NewJob, Promotion, PullRequest
from envs.core.model import (
    Environment,
    EnvironmentKey,
    EnvironmentStatus,
    OperationKind,
    OperationResult,
    parse_time,
)
from envs.core.seed_summary import SeedSummary
from envs.core.spec import EnvironmentSpec, PromotionMode, SeedMode
from envs.environments.lifecycle import Lifecycle, UpRequest
from envs.environments.registry import RegistryClient, RegistryError, promoted_tag
from envs.environments.seeding import seed_anonymised, seed_synthetic
from envs.github.client import GitHubPort, GitHubRejected, GitHubUnavailable, permission_at_least
from envs.github.commands import HELP_TEXT, Command, mentions_command, parse
from envs.github.report import DEPLOYMENT_STATE, Situation, seed_line, sticky_body
from envs.store import Store
from envs.worker.commands import RUNNERS, Outcome, Said
from envs.worker.policy import Verdict, decide
from seeders.synthetic.recipe import Recipe, RecipeError, load_recipe
from stacks.errors import StackLocked

log = logging.getLogger(__name__)

SpecSource = Callable[[str], EnvironmentSpec]


@dataclass(frozen=True)
class SeedPlace:
    """Where seeding finds its inputs.

    ``database_url`` gives the environment's database as the worker reaches
    it (in-cluster service DNS, admitted by the allow-seeding NetworkPolicy);
    ``spec_dir`` the directory of the repository's spec, against which recipe
    and rules paths resolve; ``environ`` holds the source URL and the salt.
    """

    database_url: Callable[[Environment, EnvironmentSpec], str]
    spec_dir: Callable[[str], Path]
    environ: Mapping[str, str]


class JobFailed(Exception):
    """A job's failure: the full text for the log, ``public`` for the PR (see PreviewError)."""

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = message if public is None else public

    @classmethod
    def of(cls, error: BaseException, prefix: str = "") -> JobFailed:
        return cls(f"{prefix}{error}", f"{prefix}{public_text(error)}")


class Transient(JobFailed):
    """Worth retrying later (engine hiccup, GitHub outage)."""


class Permanent(JobFailed):
    """Retrying cannot help (bad config, GitHub refused); reported on the PR."""


def environment_name(key: EnvironmentKey) -> str:
    """The GitHub deployment environment: one transient environment per PR."""
    return f"preview/pr-{key.pr_number}"


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
        handler = {
            JobKind.PR_EVENT: self.pr_event,
            JobKind.PROMOTE: self.promote,
            JobKind.DEPLOY: self.deploy,
            JobKind.TEARDOWN: self.teardown,
            JobKind.REPORT: self.report,
            JobKind.COMMENT: self.comment,
            JobKind.BRANCH_DELETED: self.branch_deleted,
            JobKind.SEED: self.seed,
        }[job.kind]
        try:
            handler(job)
        except GitHubUnavailable as exc:
            raise Transient(str(exc)) from exc
        except GitHubRejected as exc:
            raise Permanent(str(exc)) from exc
        except ConfigError as exc:
            raise Permanent.of(exc, "configuration error: ") from exc

    # -- helpers ------------------------------------------------------------------

    def enqueue(self, kind: JobKind, key: EnvironmentKey, payload: dict[str, Any]) -> None:
        self.store.queue.enqueue(NewJob(kind, key.repository, key.pr_number, payload), self.clock())

    def spec_of(self, key: EnvironmentKey) -> EnvironmentSpec:
        """The repository's spec; a ConfigError fails the job and the PR is told why."""
        return self.specs(key.repository)

    def _save_snapshot(self, job: Job) -> PullRequest:
        snap = job.payload
        previous = self.store.pull_requests.get(job.key)
        same_head = previous is not None and previous.head_sha == snap["head_sha"]
        pushed = parse_time(snap.get("updated_at"))
        if same_head and previous is not None and previous.head_pushed_at is not None:
            pushed = previous.head_pushed_at  # the delivery that first showed this head
        pr = PullRequest(
            repository=job.repository,
            pr_number=job.pr_number,
            state="closed" if job.kind is JobKind.TEARDOWN else str(snap["state"]),
            head_sha=str(snap["head_sha"]),
            branch=str(snap["branch"]),
            author=str(snap["author"]),
            draft=bool(snap["draft"]),
            fork=bool(snap["fork"]),
            labels=tuple(snap["labels"]),
            updated_at=self.clock(),
            # A new push to a fork PR needs a maintainer's approval again.
            approved_sha=previous.approved_sha if previous is not None and same_head else None,
            approved_image=previous.approved_image if previous is not None and same_head else None,
            head_pushed_at=pushed,
        )
        return self.store.pull_requests.save(pr)

    def _consider(self, pr: PullRequest, actor: str, requested: bool = False) -> str:
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
            self.enqueue(JobKind.REPORT, pr.key, {})  # a repeated signal: nothing to roll out
        elif decision.verdict is Verdict.DEPLOY:
            if pr.fork and pr.approved_image is None:
                self._bind_approval(pr, decision.image)
            self.enqueue(
                JobKind.DEPLOY,
                pr.key,
                {"sha": pr.head_sha, "image": decision.image, "actor": actor},
            )
        elif decision.verdict is Verdict.SKIP:
            if env is not None and env.status.is_live:
                self.enqueue(JobKind.TEARDOWN, pr.key, {"actor": actor, "reason": decision.reason})
            self.enqueue(JobKind.REPORT, pr.key, {"note": decision.reason})
        else:
            if decision.verdict is Verdict.NEEDS_APPROVAL:
                detail = {"sha": pr.head_sha, "image": promotion.image if promotion else None}
                self.store.audit(actor, "fork.unapproved", self.clock(), pr.key, detail)
            awaiting = decision.verdict is Verdict.NEEDS_APPROVAL
            self.enqueue(JobKind.REPORT, pr.key, {"note": decision.reason, "awaiting": awaiting})
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

    # -- job kinds ----------------------------------------------------------------

    def pr_event(self, job: Job) -> None:
        previous = self.store.pull_requests.get(job.key)
        action = job.payload.get("action")
        if previous is not None and previous.state == "closed" and action != "reopened":
            # GitHub may deliver a `labeled` sent before the close after it: only a
            # reopen brings a closed pull request's environment back.
            log.info("%s: %s after the close ignored", job.key, action)
            return
        pr = self._save_snapshot(job)
        self._consider(pr, actor=str(job.payload.get("sender") or pr.author))

    def promote(self, job: Job) -> None:
        sha = str(job.payload["head_sha"])
        for pr in self.store.pull_requests.open_at_sha(job.repository, sha):
            self._consider(pr, actor=str(job.payload.get("source") or "ci"))

    def deploy(self, job: Job) -> None:
        sha, image = str(job.payload["sha"]), str(job.payload["image"])
        pr = self.store.pull_requests.get(job.key)
        rollback = bool(job.payload.get("rollback"))  # a version that served before
        if pr is None or pr.state != "open" or (pr.head_sha != sha and not rollback):
            log.info("deploy of %s for %s skipped: no longer the open head", sha[:12], job.key)
            return
        if pr.fork and not rollback and not pr.approves(sha, image):
            # Only a decision that saw the approval queues a fork's deploy; a job that
            # reaches here without one (a re-promoted digest, a stale job) deploys nothing.
            detail = {"sha": sha, "image": image, "approved_sha": pr.approved_sha}
            self.store.audit("preview-envs", "fork.unapproved", self.clock(), job.key, detail)
            log.warning("deploy of %s for %s refused: not the approved commit/image", sha, job.key)
            return
        spec = self.spec_of(job.key)
        try:
            self._sync(job.key, note=f"deploying commit {sha[:12]}", pending_sha=sha)
        except GitHubUnavailable as exc:  # the REPORT job after the deploy catches up
            log.warning("could not report the start of %s: %s", job.key, exc)
        request = UpRequest(
            job.repository,
            job.pr_number,
            pr.branch,
            sha,
            image,
            str(job.payload["actor"]),
            runner=f"job:{job.id}",
        )
        before = self.store.get(job.key)
        first = before is None or not before.status.is_live
        try:
            self._unlocking(job, lambda: self.lifecycle.up(request, spec))
        except OperationFailed as exc:
            self.enqueue(JobKind.REPORT, job.key, {})
            raise Transient.of(exc) from exc
        self.enqueue(JobKind.REPORT, job.key, {})
        if first and spec.seed.mode is not SeedMode.NONE:
            self.enqueue(JobKind.SEED, job.key, {"actor": request.actor})
        self._react_done(job, "rocket")

    def teardown(self, job: Job) -> None:
        if "head_sha" in job.payload:  # a pull_request closed delivery
            self._save_snapshot(job)
        actor = str(job.payload.get("actor") or job.payload.get("sender") or "preview-envs")
        reason = str(job.payload.get("reason") or "requested")
        env = self.store.get(job.key)
        if env is not None and env.status is not EnvironmentStatus.DESTROYED:
            runner = f"job:{job.id}"
            try:
                self._unlocking(
                    job, lambda: self.lifecycle.down(job.key, actor, reason, runner=runner)
                )
            except OperationFailed as exc:
                self.enqueue(JobKind.REPORT, job.key, {})
                raise Transient.of(exc) from exc
        self.enqueue(JobKind.REPORT, job.key, {"note": f"removed ({reason})"})
        self._react_done(job, "rocket")

    def seed(self, job: Job) -> None:
        """Seed a ready environment; a command gets a reply when its input is wrong."""
        actor = str(job.payload.get("actor") or "preview-envs")
        comment_id = job.payload.get("comment_id")
        try:
            summary = self._seed(job, actor)
        except ConfigError as exc:
            if comment_id is None:
                raise
            self.github.reply(
                job.repository, job.pr_number, f"@{actor} cannot reseed: {public_text(exc)}"
            )
            self.github.react(job.repository, job.pr_number, int(comment_id), "confused")
            return
        except OperationFailed as exc:
            raise Transient.of(exc) from exc
        self.enqueue(JobKind.REPORT, job.key, {"note": f"seeded ({summary.headline()})"})
        self._react_done(job, "rocket")

    def _seed(self, job: Job, actor: str) -> SeedSummary:
        spec = self.spec_of(job.key)
        mode = SeedMode(job.payload.get("mode") or spec.seed.mode)
        if mode is SeedMode.NONE:
            raise ConfigError("this repository's spec has no seed mode (seed.mode)")
        if self.seeding is None:
            raise ConfigError("seeding is not configured on this provisioner")
        env = self.store.get(job.key)
        if env is None or env.status is not EnvironmentStatus.READY:
            raise ConfigError("there is no ready environment to seed; deploy it first")
        place = self.seeding
        target = place.database_url(env, spec)
        limit = spec.seed.statement_timeout  # the PR's database: its checks are its author's
        rules = place.spec_dir(job.repository) / spec.seed.rules if spec.seed.rules else None
        if mode is SeedMode.SYNTHETIC:
            try:
                recipe = load_recipe(rules) if rules else Recipe()
            except RecipeError as exc:
                raise ConfigError(str(exc)) from None
            if spec.seed.scale != 1.0:
                recipe = recipe.model_copy(update={"scale": recipe.scale * spec.seed.scale})

            def run() -> SeedSummary:
                return seed_synthetic(target, recipe, statement_timeout=limit)

        else:
            source_env = spec.seed.source_url_env
            if rules is None or source_env is None:
                raise ConfigError("anonymised seeding needs seed.rules and seed.source_url_env")
            source = place.environ.get(source_env)
            if not source:
                raise ConfigError(f"{source_env} (the source database URL) is not set")
            salt = place.environ.get("PREVIEW_ANONYMISE_SALT", "")

            def run() -> SeedSummary:
                return seed_anonymised(source, target, rules, salt, statement_timeout=limit)

        return self.lifecycle.seed(job.key, mode.value, run, actor, runner=f"job:{job.id}")

    def branch_deleted(self, job: Job) -> None:
        branch = str(job.payload["branch"])
        for env in self.store.environments(repository=job.repository):
            if env.branch == branch and env.status.is_live:
                self.enqueue(
                    JobKind.TEARDOWN,
                    env.key,
                    {"actor": str(job.payload.get("sender")), "reason": "branch deleted"},
                )

    def report(self, job: Job) -> None:
        self._sync(
            job.key,
            note=job.payload.get("note"),
            error=job.payload.get("error"),
            awaiting=bool(job.payload.get("awaiting")),
        )

    def comment(self, job: Job) -> None:
        """A `/preview` comment: who may, first; only then what the command says.

        An author below the spec's permission gets the refusal and nothing
        else, however the command is written: no help text, no parse error,
        nothing the bot can be made to post for them.
        """
        comment_id, author = int(job.payload["comment_id"]), str(job.payload["author"])
        body = str(job.payload["body"])
        if not mentions_command(body):
            return
        self.github.react(job.repository, job.pr_number, comment_id, "eyes")
        spec = self.spec_of(job.key)
        granted = self.github.permission(job.repository, author)
        needed = spec.commands.min_permission
        parsed = parse(body)
        said = str(parsed) if isinstance(parsed, Command) else "/preview (malformed)"
        if not permission_at_least(granted, needed):
            self.store.audit(author, "command.refused", self.clock(), job.key, {"command": said})
            self.github.reply(
                job.repository,
                job.pr_number,
                f"Sorry @{author}, `/preview` commands need **{needed.value}** access to this "
                f"repository (you have {granted}). A maintainer can run it for you.",
            )
            self.github.react(job.repository, job.pr_number, comment_id, "confused")
            return
        if not isinstance(parsed, Command):
            reason = parsed.reason if parsed is not None else "no command found"
            self.github.reply(job.repository, job.pr_number, f"@{author} {reason}.\n\n{HELP_TEXT}")
            self.github.react(job.repository, job.pr_number, comment_id, "confused")
            return
        self.store.audit(author, "command.accepted", self.clock(), job.key, {"command": said})
        self._command(job, parsed, author, comment_id)

    def _command(self, job: Job, command: Command, author: str, comment_id: int) -> None:
        """Run an accepted command through its module (envs.worker.commands)."""
        said = Said(self, job, command, author, comment_id)
        if RUNNERS[command.verb](said) is Outcome.DONE:
            self.github.react(job.repository, job.pr_number, comment_id, "rocket")

    def _unlocking(self, job: Job, operation: Callable[[], Environment]) -> Environment:
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

    def _react_done(self, job: Job, content: str) -> None:
        comment_id = job.payload.get("comment_id")
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

    def _sync(
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
