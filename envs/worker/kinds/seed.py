"""Fill a ready environment's database; a command gets a reply when its input is wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.core.errors import ConfigError, OperationFailed, public_text
from envs.core.jobs import Job
from envs.core.payloads import Report
from envs.core.payloads import Seed as SeedPayload
from envs.core.seed_summary import SeedSummary
from envs.core.spec import SeedMode
from envs.environments.seed_run import seed_environment
from envs.worker.failures import Transient

if TYPE_CHECKING:
    from envs.worker.handlers import Handlers


def run(handlers: Handlers, job: Job, payload: SeedPayload) -> None:
    try:
        summary = _seed(handlers, job, payload)
    except ConfigError as exc:
        if payload.comment_id is None:
            raise
        said = f"@{payload.actor} cannot reseed: {public_text(exc)}"
        handlers.github.reply(job.repository, job.pr_number, said)
        handlers.github.react(job.repository, job.pr_number, payload.comment_id, "confused")
        return
    except OperationFailed as exc:
        raise Transient.of(exc) from exc
    handlers.enqueue(job.key, Report(note=f"seeded ({summary.headline()})"))
    handlers.react_done(job, payload.comment_id, "rocket")


def _seed(handlers: Handlers, job: Job, payload: SeedPayload) -> SeedSummary:
    if handlers.seeding is None:
        raise ConfigError("seeding is not configured on this provisioner")
    spec = handlers.spec_of(job.key)
    mode = SeedMode(payload.mode or spec.seed.mode)
    return seed_environment(
        handlers.lifecycle,
        handlers.seeding,
        spec,
        job.key,
        mode,
        payload.actor,
        runner=f"job:{job.id}",
    )
