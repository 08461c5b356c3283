"""`/preview up [sha]` and `/preview redeploy`: deploy the head; on a fork, approve it first.

A fork's approval covers the commit the maintainer reviewed and the image
promoted for it (ADR 0009, :mod:`envs.worker.approval`).
"""

from __future__ import annotations

from dataclasses import replace

from envs.core.jobs import PullRequest
from envs.core.payloads import Deploy
from envs.worker import approval
from envs.worker.commands.said import Outcome, Said
from envs.worker.policy import Verdict, decide


def run(said: Said) -> Outcome:
    handlers, key = said.handlers, said.key
    pr = handlers.store.pull_requests.get(key)
    if pr is None:
        return said.refuse("no pull_request event was seen for this pull request yet.")
    head = handlers.github.pull_head(key.repository, key.pr_number)
    spec = handlers.spec_of(key)
    if pr.fork:
        approved = _approve_fork(said, pr, head)
        if approved is None:
            return Outcome.ANSWERED
        pr = approved
    else:
        pr = handlers.store.pull_requests.save(replace(pr, head_sha=head))
    decision = decide(pr, spec, handlers.promotion_for(pr, spec), requested=True)
    if decision.verdict is Verdict.DEPLOY:
        assert decision.image is not None  # a DEPLOY verdict names its image
        deploy = Deploy(
            sha=head, image=decision.image, actor=said.author, comment_id=said.comment_id
        )
        handlers.enqueue(key, deploy)
        return Outcome.QUEUED  # the deploy reacts when it is done
    said.reply(f"@{said.author} {decision.reason}.")
    return Outcome.DONE


def _approve_fork(said: Said, pr: PullRequest, head: str) -> PullRequest | None:
    """Record a maintainer's approval of a fork's ``head``; None (and a reply) if refused."""
    handlers = said.handlers
    refused = approval.refusal(pr, head, said.command.sha, said.commented_at)
    if refused is not None:
        detail = {"command": str(said.command), "head": head, "why": refused}
        handlers.store.audit(said.author, "fork.approval_refused", handlers.clock(), pr.key, detail)
        said.refuse(refused)
        return None
    promoted = handlers.promotion_for(replace(pr, head_sha=head), handlers.spec_of(pr.key))
    image = promoted.image if promoted is not None else None
    pushed = pr.head_pushed_at if pr.head_sha == head else None  # a head not seen yet
    approved = handlers.store.pull_requests.save(
        replace(pr, head_sha=head, approved_sha=head, approved_image=image, head_pushed_at=pushed)
    )
    approval_detail = {"sha": head, "image": image, "comment_id": said.comment_id}
    handlers.store.audit(said.author, "fork.approved", handlers.clock(), pr.key, approval_detail)
    return approved
