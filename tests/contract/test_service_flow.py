"""PR flows end to end through the service: webhook → queue → worker → lifecycle → PR report."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from envs.config.spec_loading import parse_spec
from envs.core.jobs import JobKind, JobStatus, NewJob
from envs.core.model import EnvironmentKey, EnvironmentStatus, FailureReason, OperationKind
from envs.core.payloads import Report
from tests.contract.fake_github import FakeGitHub
from tests.contract.github_contract import webhook_examples
from tests.contract.service_harness import (
    PR,
    REPO,
    Service,
    comment,
    image,
    pr_event,
    running_service,
)
from tests.doubles import WorkerKilled
from tests.registry_server import Registry

KEY = EnvironmentKey(REPO, PR)
SHA1 = pr_event("opened")["pull_request"]["head"]["sha"]
SHA2 = "2" * 40


@pytest.fixture(params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path: Path, fake_github: tuple[FakeGitHub, str]
) -> Iterator[Service]:
    url = (
        f"sqlite:///{tmp_path}/state.db"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    fake, base = fake_github
    fake.roles[(REPO, "maintainer")] = "maintain"
    fake.roles[(REPO, "reader")] = "read"
    fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA1}
    with running_service(url, fake, base) as running:
        yield running


def open_and_deploy(service: Service) -> None:
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA1, image(1))
    service.drain()


def test_opened_waits_for_the_image_then_deploys_and_reports(service: Service) -> None:
    service.deliver("pull_request", pr_event("opened"))
    service.drain()
    assert "waiting for CI to promote an image" in service.sticky()
    assert service.engine.calls == []
    assert service.deployment_states() == []

    service.promote(SHA1, image(1))
    service.drain()
    env = service.store.require(KEY)
    assert env.status is EnvironmentStatus.READY
    assert env.image == image(1)
    assert [call[0] for call in service.engine.calls] == ["up"]
    assert service.deployment_states() == [["in_progress", "success"]]
    (deployment,) = service.fake.deployments_of(REPO)
    assert deployment.sha == SHA1
    assert deployment.transient
    assert not deployment.production
    assert deployment.statuses[-1]["environment_url"] == env.url
    sticky = service.sticky()
    assert "**ready**" in sticky
    assert env.url is not None
    assert env.url in sticky


def test_a_push_rolls_out_the_new_digest_and_retires_the_old_deployment(
    service: Service,
) -> None:
    open_and_deploy(service)
    service.deliver("pull_request", pr_event("synchronize", sha=SHA2))
    service.drain()
    assert "Newer commit" in service.sticky()  # the old one keeps serving meanwhile
    service.promote(SHA2, image(2))
    service.drain()
    env = service.store.require(KEY)
    assert (env.head_sha, env.image, env.status) == (SHA2, image(2), EnvironmentStatus.READY)
    assert service.deployment_states() == [
        ["in_progress", "success", "inactive"],
        ["in_progress", "success"],
    ]


def test_a_stale_deploy_is_superseded_by_a_newer_push(service: Service) -> None:
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA1, image(1))
    service.promote(SHA2, image(2))
    service.deliver("pull_request", pr_event("synchronize", sha=SHA2))
    service.drain()
    ups = [spec.app.image for spec in service.engine.specs]
    assert ups == [image(2)], "the stale SHA must never be deployed"


def test_a_rollout_that_can_never_succeed_is_reported_once_not_retried(
    service: Service,
) -> None:
    """A root image under `restricted` fails the same way every time: one attempt, the reason."""
    open_and_deploy(service)
    service.engine.never_rolls_out = "the app's image runs as root (pod app-1, container app)"
    service.deliver("pull_request", pr_event("synchronize", sha=SHA2))
    service.promote(SHA2, image(2))
    service.drain()
    (deploy,) = [j for j in service.store.queue.jobs(limit=100) if j.kind is JobKind.DEPLOY][:1]
    assert deploy.status is JobStatus.FAILED
    assert deploy.attempts == 1, "retrying the same image cannot help"
    assert "runs as root" in service.sticky()
    assert service.store.require(KEY).status is EnvironmentStatus.FAILED
    failed = service.store.operations(KEY.repository, KEY.pr_number, limit=1)[0]
    assert failed.reason is FailureReason.ROLLOUT
    # What the workers' GitHub answers said of the rate limit is kept for /metrics.
    [seen] = service.store.github_cache.rate_limits()
    assert (seen.account, seen.limit, seen.remaining) == (
        "token",
        5000,
        service.fake.rate_remaining,
    )


def test_a_failed_rollout_is_reported_and_retried(service: Service) -> None:
    open_and_deploy(service)
    service.engine.fail_next = "Deployment app: ProgressDeadlineExceeded (image pull failed)"
    service.deliver("pull_request", pr_event("synchronize", sha=SHA2))
    service.promote(SHA2, image(2))
    job = service.worker.run_once()  # pr_event
    while job is not None and job.kind is not JobKind.DEPLOY:
        job = service.worker.run_once()
    assert job is not None
    assert job.status is JobStatus.QUEUED  # queued again, with backoff
    assert "ProgressDeadlineExceeded" in (job.last_error or "")
    failed = service.store.operations(KEY.repository, KEY.pr_number, limit=1)[0]
    assert failed.reason is FailureReason.ENGINE
    service.worker.run_once()  # the report of the failure
    assert "ProgressDeadlineExceeded" in service.sticky()
    assert "The previous version (commit `" + SHA1[:12] + "`) keeps serving" in service.sticky()
    assert service.deployment_states()[-1] == ["in_progress", "failure"]
    service.drain()  # the retry succeeds
    assert service.store.require(KEY).status is EnvironmentStatus.READY
    assert "ProgressDeadlineExceeded" not in service.sticky()


def test_teardown_after_a_failed_rollout_retires_the_deployment_that_was_serving(
    service: Service,
) -> None:
    open_and_deploy(service)
    service.engine.fail_next = "Deployment app: timed out waiting to be Ready"
    service.deliver("pull_request", pr_event("synchronize", sha=SHA2))
    service.promote(SHA2, image(2))
    for _ in range(10):  # until the failure is reported, before the retry
        service.worker.run_once()
        if service.deployment_states()[-1:] == [["in_progress", "failure"]]:
            break
    assert service.deployment_states() == [["in_progress", "success"], ["in_progress", "failure"]]
    service.deliver("pull_request", pr_event("closed", sha=SHA2))
    service.drain()
    assert [states[-1] for states in service.deployment_states()] == ["inactive", "inactive"]


def test_closed_tears_down_and_marks_the_deployment_inactive(service: Service) -> None:
    open_and_deploy(service)
    service.deliver("pull_request", pr_event("closed"))
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.DESTROYED
    assert service.engine.calls[-1][0] == "destroy"
    assert service.deployment_states() == [["in_progress", "success", "inactive"]]
    assert "**destroyed**" in service.sticky()
    pr = service.store.pull_requests.get(KEY)
    assert pr is not None
    assert pr.state == "closed"


def test_closing_deletes_the_prs_github_environment(service: Service) -> None:
    """One environment per PR, left behind, is thousands of them in a busy repository."""
    open_and_deploy(service)
    service.deliver("pull_request", pr_event("closed"))
    service.drain()
    assert service.fake.deleted_environments == [(REPO, f"preview/pr-{PR}")]


def test_an_environment_the_app_may_not_delete_does_not_fail_the_teardown(
    service: Service,
) -> None:
    service.fake.may_delete_environments = False  # no Administration: write
    open_and_deploy(service)
    service.deliver("pull_request", pr_event("closed"))
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.DESTROYED
    assert service.store.queue.counts()[JobStatus.FAILED] == 0


def test_a_late_label_after_the_close_never_brings_the_environment_back(
    service: Service,
) -> None:
    open_and_deploy(service)
    service.deliver("pull_request", pr_event("closed"))
    service.drain()
    late = pr_event("labeled")  # sent before the close, delivered after it
    late["pull_request"]["state"] = "open"
    service.deliver("pull_request", late)
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.DESTROYED
    assert [call[0] for call in service.engine.calls] == ["up", "destroy"]
    service.deliver("pull_request", pr_event("reopened"))
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.READY, "a reopen does"


def test_a_destroy_said_during_a_github_outage_runs_when_github_is_back(
    service: Service,
) -> None:
    """Every GitHub call fails for longer than five attempts' backoff (~75 s) would wait."""
    open_and_deploy(service)
    service.fake.comments[12] = _their_comment(12, "maintainer")
    service.fake.fail("POST", r"/reactions$", 503, times=40)
    service.deliver("issue_comment", comment("/preview destroy", "maintainer", comment_id=12))
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.DESTROYED
    (job,) = [j for j in service.store.queue.jobs(limit=100) if j.kind is JobKind.COMMENT]
    assert job.status is JobStatus.DONE
    assert job.attempts > 5


def test_drafts_are_not_deployed_and_a_live_one_is_removed(service: Service) -> None:
    open_and_deploy(service)
    service.deliver("pull_request", pr_event("converted_to_draft"))
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.DESTROYED
    assert "mark it ready for review" in service.sticky()


def test_someone_below_the_permission_gets_the_refusal_and_nothing_else(
    service: Service,
) -> None:
    """A malformed or absurd command from them is not parsed for a reply: no help to spam."""
    service.deliver("pull_request", pr_event("opened"))
    service.fake.comments[21] = _their_comment(21, "reader")
    absurd = "/preview extend 99999999999999999999999d " + "x" * 1000
    service.deliver("issue_comment", comment(absurd, "reader", comment_id=21))
    service.drain()
    (reply,) = [r for r in service.replies() if not r.startswith("/preview")]
    assert reply.startswith("Sorry @reader, `/preview` commands need **write** access")
    assert "Preview commands" not in reply, "no help text for them"
    refused = [e for e in service.store.audit_entries(REPO, PR) if e.action == "command.refused"]
    assert [e.actor for e in refused] == ["reader"]


def test_maintainer_commands_run_and_a_reader_is_refused(service: Service) -> None:
    open_and_deploy(service)
    before = service.store.require(KEY).expires_at

    service.deliver("issue_comment", comment("/preview destroy", "reader", comment_id=1))
    service.fake.comments[1] = _their_comment(1, "reader")
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.READY
    assert any("need **write** access" in reply for reply in service.replies())
    assert service.fake.comments[1].reactions == ["eyes", "confused"]

    service.fake.comments[2] = _their_comment(2, "maintainer")
    service.deliver("issue_comment", comment("/preview extend 48h", "maintainer", comment_id=2))
    service.drain()
    assert service.store.require(KEY).expires_at >= before + timedelta(hours=48)
    assert service.fake.comments[2].reactions == ["eyes", "rocket"]

    service.fake.comments[3] = _their_comment(3, "maintainer")
    service.deliver("issue_comment", comment("/preview destroy", "maintainer", comment_id=3))
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.DESTROYED
    assert service.fake.comments[3].reactions == ["eyes", "rocket"]
    actions = [entry.action for entry in service.store.audit_entries(REPO, PR)]
    assert "command.refused" in actions
    assert actions.count("command.accepted") == 2


def test_malformed_commands_get_the_help(service: Service) -> None:
    service.deliver("pull_request", pr_event("opened"))
    service.fake.comments[5] = _their_comment(5, "maintainer")
    service.deliver("issue_comment", comment("/preview deploy-everything now", "maintainer", 5))
    service.drain()
    assert any("unknown command" in r and "/preview extend" in r for r in service.replies())
    assert service.fake.comments[5].reactions == ["eyes", "confused"]


def test_fork_prs_wait_for_a_maintainers_approval_of_the_head(service: Service) -> None:
    fork = pr_event("opened")
    fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    service.deliver("pull_request", fork)
    service.promote(SHA1, image(1))
    service.drain()
    assert service.engine.calls == []
    assert f"a maintainer's `/preview up {SHA1[:12]}` approves commit" in service.sticky()

    service.fake.comments[6] = _their_comment(6, "maintainer")
    service.fake.reviews[(REPO, PR)] = [
        ("alice", "APPROVED", SHA1),
        ("bob", "APPROVED", SHA1),
        ("bob", "COMMENTED", SHA1),  # a comment does not withdraw an approval
        ("carol", "APPROVED", SHA1),
        ("carol", "CHANGES_REQUESTED", SHA1),  # a later request for changes does
    ]
    service.deliver("issue_comment", comment("/preview up", "maintainer", comment_id=6))
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.READY
    # The deploy's audit entry answers "who asked, who promoted, who approved, who reviewed".
    entries = service.store.audit_entries(REPO, PR, limit=50)
    [deployed] = [e for e in entries if e.action == "up.succeeded"]
    assert deployed.detail["requested_by"] == "maintainer"
    assert (deployed.detail["trigger"], deployed.detail["comment_id"]) == ("comment", 6)
    assert deployed.detail["promoted_by"] == "ci"
    assert deployed.detail["fork_approved_sha"] == SHA1
    assert deployed.detail["fork_approved_image"] == image(1)
    assert deployed.detail["approving_reviewers"] == [
        {"login": "alice", "commit": SHA1},
        {"login": "bob", "commit": SHA1},
    ]
    [accepted] = [e for e in entries if e.action == "command.accepted"]
    assert (accepted.actor, accepted.detail["permission"]) == ("maintainer", "maintain")

    # A later push needs approval again: nothing is deployed automatically.
    pushed = pr_event("synchronize", sha=SHA2)
    pushed["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    service.deliver("pull_request", pushed)
    service.promote(SHA2, image(2))
    service.drain()
    assert service.store.require(KEY).head_sha == SHA1
    assert "`/preview up 222222222222` approves commit 222222222222" in service.sticky()
    actions = [e.action for e in service.store.audit_entries(REPO, PR, limit=50)]
    assert "fork.approved" in actions
    assert "fork.unapproved" in actions, "the push nobody approved is in the audit"


def _fork(payload: dict[str, Any]) -> dict[str, Any]:
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    return payload


def test_a_push_between_the_approving_comment_and_its_job_is_not_deployed(
    service: Service,
) -> None:
    """The race: the maintainer reviewed SHA1 and approved; the fork pushed SHA2 right after.

    GitHub's comment payload names no commit, so the approval is timed by
    GitHub's clock: SHA2 reached the PR after the comment was written, so the
    plain `/preview up` does not cover it. Before, the job approved whatever
    GitHub reported as the head when it ran, and deployed SHA2 unreviewed.
    """
    service.deliver("pull_request", _fork(pr_event("opened", updated_at="2026-01-01T10:00:00Z")))
    service.promote(SHA1, image(1))
    service.promote(SHA2, image(2))
    service.drain()
    service.fake.comments[7] = _their_comment(7, "maintainer")
    approve = comment("/preview up", "maintainer", 7, created_at="2026-01-01T10:05:00Z")
    service.deliver("issue_comment", approve)
    pushed = _fork(pr_event("synchronize", sha=SHA2, updated_at="2026-01-01T10:05:01Z"))
    service.deliver("pull_request", pushed)
    service.fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA2}
    service.drain()
    assert service.engine.calls == [], "nothing the maintainer did not see is deployed"
    assert any("`/preview up 222222222222` approves" in r for r in service.replies())
    assert service.fake.comments[7].reactions == ["eyes", "confused"]
    refused = service.store.audit_entries(REPO, PR, limit=50)
    assert [e.detail["head"] for e in refused if e.action == "fork.approval_refused"] == [SHA2]

    # Naming the commit approves exactly it, with the digest promoted for it.
    service.fake.comments[8] = _their_comment(8, "maintainer")
    service.deliver("issue_comment", comment("/preview up 2222222", "maintainer", 8))
    service.drain()
    env = service.store.require(KEY)
    assert (env.head_sha, env.image, env.status) == (SHA2, image(2), EnvironmentStatus.READY)
    (approved,) = [
        e for e in service.store.audit_entries(REPO, PR, limit=50) if e.action == "fork.approved"
    ]
    assert (approved.actor, approved.detail["sha"], approved.detail["image"]) == (
        "maintainer",
        SHA2,
        image(2),
    )


def test_a_fork_approval_names_a_commit_that_is_no_longer_the_head(service: Service) -> None:
    service.deliver("pull_request", _fork(pr_event("opened")))
    service.promote(SHA1, image(1))
    service.drain()
    service.fake.pulls[(REPO, PR)] = {"state": "open", "head_sha": SHA2}
    service.fake.comments[9] = _their_comment(9, "maintainer")
    service.deliver("issue_comment", comment(f"/preview up {SHA1[:10]}", "maintainer", 9))
    service.drain()
    assert service.engine.calls == []
    assert any("is not this pull request's head any more" in r for r in service.replies())


def test_a_re_promoted_digest_of_an_approved_fork_commit_needs_approval_again(
    service: Service,
) -> None:
    service.deliver("pull_request", _fork(pr_event("opened")))
    service.promote(SHA1, image(1))
    service.drain()
    service.fake.comments[10] = _their_comment(10, "maintainer")
    service.deliver("issue_comment", comment(f"/preview up {SHA1[:12]}", "maintainer", 10))
    service.drain()
    assert service.store.require(KEY).image == image(1)

    service.promote(SHA1, image(3))  # the same commit, another image: not what was approved
    service.drain()
    assert service.store.require(KEY).image == image(1)
    assert [spec.app.image for spec in service.engine.specs] == [image(1)]
    assert "promoted again with another digest" in service.sticky()


def test_a_github_outage_delays_reporting_but_loses_nothing(service: Service) -> None:
    service.fake.fail("POST", r"/issues/\d+/comments$", 503, times=6)
    service.fake.fail("GET", r"/issues/\d+/comments$", 503, times=6)
    open_and_deploy(service)
    assert service.store.require(KEY).status is EnvironmentStatus.READY
    assert "**ready**" in service.sticky()
    retried = [j for j in service.store.queue.jobs(limit=100) if j.attempts > 1]
    assert retried, "the outage should have forced retries"
    assert service.store.queue.counts()[JobStatus.FAILED] == 0


def test_a_repository_without_a_spec_is_told_why(service: Service) -> None:
    del service.specs[REPO]
    service.deliver("pull_request", pr_event("opened"))
    service.drain()
    assert "configuration error: no spec for Codertocat/Hello-World" in service.sticky()
    assert service.store.queue.counts()[JobStatus.FAILED] == 1


def _their_comment(comment_id: int, author: str) -> object:
    from tests.contract.fake_github import Comment

    return Comment(comment_id, REPO, PR, "/preview ...", author)


def test_deleting_the_branch_tears_the_environment_down(service: Service) -> None:
    open_and_deploy(service)
    branch = pr_event("opened")["pull_request"]["head"]["ref"]
    deleted = {
        "ref": branch,
        "ref_type": "branch",
        "pusher_type": "user",
        "repository": pr_event("opened")["repository"],
        "sender": {"login": "Codertocat"},
    }
    service.deliver("delete", deleted)
    service.drain()
    assert service.store.require(KEY).status is EnvironmentStatus.DESTROYED
    assert "branch deleted" in service.sticky()


def test_status_and_help_reply_on_the_pr(service: Service) -> None:
    open_and_deploy(service)
    service.fake.comments[7] = _their_comment(7, "maintainer")
    service.deliver("issue_comment", comment("/preview status", "maintainer", comment_id=7))
    service.fake.comments[8] = _their_comment(8, "maintainer")
    service.deliver("issue_comment", comment("/preview help", "maintainer", comment_id=8))
    service.drain()
    status, help_text = service.replies()[-2:]
    env = service.store.require(KEY)
    assert env.url is not None
    assert env.url in status
    assert "**ready**" in status
    assert "/preview extend <duration>" in help_text
    assert service.fake.comments[7].reactions == ["eyes", "rocket"]


def test_redeploy_runs_the_current_head_again(service: Service) -> None:
    open_and_deploy(service)
    service.fake.comments[9] = _their_comment(9, "maintainer")
    service.deliver("issue_comment", comment("/preview redeploy", "maintainer", comment_id=9))
    service.drain()
    assert [call[0] for call in service.engine.calls] == ["up", "up"]
    assert service.fake.comments[9].reactions == ["eyes", "rocket"]
    ops = service.store.operations(REPO, PR)
    assert ops[0].actor == "maintainer"  # newest first: the redeploy


def test_a_lock_left_by_a_killed_worker_is_released_by_the_next_one(service: Service) -> None:
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA1, image(1))
    service.engine.kill_in_next_up = True
    with pytest.raises(WorkerKilled):
        service.drain()
    (running,) = service.store.queue.jobs(status=JobStatus.RUNNING)
    assert running.kind is JobKind.DEPLOY
    service.clock.advance(timedelta(minutes=2))  # the dead worker's lease runs out
    service.drain()
    env = service.store.require(KEY)
    assert env.status is EnvironmentStatus.READY
    assert ("cancel", env.stack) in service.engine.calls
    ops = service.store.operations(REPO, PR)
    assert [(op.result.value, op.error or "") for op in ops][-1][1].startswith("abandoned")
    assert all(op.result.value != "running" for op in ops)
    assert service.store.queue.get(running.id).status is JobStatus.DONE  # type: ignore[union-attr]


def test_a_lock_held_by_a_persons_previewctl_is_left_alone(service: Service) -> None:
    open_and_deploy(service)
    env = service.store.require(KEY)
    # Someone runs `previewctl up` by hand: journalled without a job, holding the lock.
    service.store.start_operation(KEY, OperationKind.UP, "alice", service.clock(), SHA1)
    service.engine.locked.add(env.stack)
    service.deliver("pull_request", pr_event("synchronize", sha=SHA2))
    service.promote(SHA2, image(2))
    deploy = None
    for _ in range(10):
        job = service.worker.run_once()
        if job is not None and job.kind is JobKind.DEPLOY:
            deploy = job
            break
    assert deploy is not None
    assert deploy.status is JobStatus.QUEUED  # retried later, the lock untouched
    assert "locked" in (deploy.last_error or "")
    assert ("cancel", env.stack) not in service.engine.calls


def workflow_run(sha: str) -> dict[str, object]:
    """GitHub's successful workflow_run example, for another head SHA."""
    example = next(
        e
        for e in webhook_examples()["workflow_run"]
        if e["action"] == "completed" and e["workflow_run"]["conclusion"] == "success"
    )
    payload = copy.deepcopy(example)
    payload["workflow_run"]["head_sha"] = sha
    payload["repository"]["full_name"] = REPO
    return payload


def test_tag_promotion_pins_the_digest_the_tag_had_when_ci_succeeded(
    service: Service, registry: Registry
) -> None:
    path = f"codertocat/hello-world-{uuid.uuid4().hex[:8]}"  # the registry outlives this test
    repository = f"{registry.host}/{path}"
    service.specs[REPO] = parse_spec(
        "version: 1\n"
        f"image: {{repository: {repository}, promotion: tag}}\n"
        'url: {host_template: "{name}.preview.example.test"}\n',
        "Hello-World.yaml",
    )
    service.deliver("pull_request", pr_event("opened"))
    service.drain()
    assert "waiting for CI to promote an image" in service.sticky()  # the tag is not there yet

    built = registry.push(path, f"sha-{SHA1[:7]}", b"build of SHA1")
    service.deliver("workflow_run", workflow_run(SHA1))
    service.drain()
    env = service.store.require(KEY)
    assert env.status is EnvironmentStatus.READY
    assert env.image == f"{repository}@{built}"

    # Someone re-pushes the tag: the preview keeps the bytes CI tested.
    registry.push(path, f"sha-{SHA1[:7]}", b"something else")
    service.deliver("workflow_run", workflow_run(SHA1))
    service.drain()
    assert service.store.require(KEY).image == f"{repository}@{built}"
    assert len(service.engine.calls) == 1


def test_rollback_serves_the_version_that_was_ready_before(service: Service) -> None:
    open_and_deploy(service)
    service.fake.comments[30] = _their_comment(30, "maintainer")
    service.deliver("issue_comment", comment("/preview rollback", "maintainer", comment_id=30))
    service.drain()
    assert any("no earlier version" in r for r in service.replies())

    service.deliver("pull_request", pr_event("synchronize", sha=SHA2))
    service.promote(SHA2, image(2))
    service.drain()
    service.fake.comments[31] = _their_comment(31, "maintainer")
    service.deliver("issue_comment", comment("/preview rollback", "maintainer", comment_id=31))
    service.drain()
    env = service.store.require(KEY)
    assert (env.head_sha, env.image, env.status) == (SHA1, image(1), EnvironmentStatus.READY)
    assert [spec.app.image for spec in service.engine.specs] == [image(1), image(2), image(1)]
    assert service.fake.comments[31].reactions == ["eyes", "rocket"]
    (rolled,) = [
        e for e in service.store.audit_entries(REPO, PR, limit=50) if e.action == "deploy.rollback"
    ]
    assert rolled.actor == "maintainer"
    assert (rolled.detail["from_image"], rolled.detail["to_image"]) == (image(2), image(1))
    assert "Newer commit `222222222222` is not deployed yet" in service.sticky()


def test_a_report_with_a_reply_says_it_in_a_new_comment(service: Service) -> None:
    """An expiry warning must notify people; an edited sticky comment notifies nobody."""
    open_and_deploy(service)
    warning = Report(reply="⏳ This preview expires at 2026-12-08 10:00 UTC")
    service.store.queue.enqueue(NewJob(JobKind.REPORT, REPO, PR, warning.dump()), service.clock())
    service.drain()
    assert service.replies()[-1] == "⏳ This preview expires at 2026-12-08 10:00 UTC"
