"""`/preview rollback`: serve again the last version that became ready before this one.

The version (commit and image digest) comes from the journal, not from a
tag or a rebuild: exactly what served before. It is deployed as any version
is, and audited as a rollback. A later push or promotion rolls forward.
"""

from __future__ import annotations

from envs.core.model import OperationKind, OperationResult
from envs.core.payloads import Deploy
from envs.worker.commands.said import Outcome, Said


def run(said: Said) -> Outcome:
    handlers, key = said.handlers, said.key
    env = handlers.store.get(key)
    if env is None or not env.status.is_live:
        return said.refuse("there is no environment to roll back; `/preview up` deploys one.")
    serving = (env.head_sha, env.image)
    previous = next(
        (
            op
            for op in handlers.store.operations(key.repository, key.pr_number, limit=100)
            if op.kind is OperationKind.UP
            and op.result is OperationResult.SUCCEEDED
            and op.head_sha
            and op.image
            and (op.head_sha, op.image) != serving
        ),
        None,
    )
    if previous is None:
        return said.refuse(
            "no earlier version of this preview became ready; nothing to roll back to."
        )
    detail = {
        "from_sha": env.head_sha,
        "from_image": env.image,
        "to_sha": previous.head_sha,
        "to_image": previous.image,
    }
    handlers.store.audit(said.author, "deploy.rollback", handlers.clock(), key, detail)
    assert previous.head_sha is not None
    assert previous.image is not None
    deploy = Deploy(
        sha=previous.head_sha,
        image=previous.image,
        actor=said.author,
        comment_id=said.comment_id,
        rollback=True,
    )
    handlers.enqueue(key, deploy)
    return Outcome.QUEUED
