"""Fill a ready environment's database; a command gets a reply when its input is wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envs.core.errors import ConfigError, OperationFailed, public_text
from envs.core.jobs import Job
from envs.core.model import EnvironmentStatus
from envs.core.payloads import Report
from envs.core.payloads import Seed as SeedPayload
from envs.core.seed_summary import SeedSummary
from envs.core.spec import SeedMode
from envs.environments.seeding import seed_anonymised, seed_synthetic
from envs.worker.failures import Transient
from seeders.synthetic.recipe import Recipe, RecipeError, load_recipe

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
    spec = handlers.spec_of(job.key)
    mode = SeedMode(payload.mode or spec.seed.mode)
    if mode is SeedMode.NONE:
        raise ConfigError("this repository's spec has no seed mode (seed.mode)")
    if handlers.seeding is None:
        raise ConfigError("seeding is not configured on this provisioner")
    env = handlers.store.get(job.key)
    if env is None or env.status is not EnvironmentStatus.READY:
        raise ConfigError("there is no ready environment to seed; deploy it first")
    place = handlers.seeding
    limit = spec.seed.statement_timeout  # the PR's database: its checks are its author's
    rules = place.spec_dir(job.repository) / spec.seed.rules if spec.seed.rules else None
    if mode is SeedMode.SYNTHETIC:
        try:
            recipe = load_recipe(rules) if rules else Recipe()
        except RecipeError as exc:
            raise ConfigError(str(exc)) from None
        if spec.seed.scale != 1.0:
            recipe = recipe.model_copy(update={"scale": recipe.scale * spec.seed.scale})

        def fill() -> SeedSummary:
            with place.database(env, spec) as target:
                return seed_synthetic(target, recipe, statement_timeout=limit)

    else:
        source_env = spec.seed.source_url_env
        if rules is None or source_env is None:
            raise ConfigError("anonymised seeding needs seed.rules and seed.source_url_env")
        source = place.environ.get(source_env)
        if not source:
            raise ConfigError(f"{source_env} (the source database URL) is not set")
        salt = place.environ.get("PREVIEW_ANONYMISE_SALT", "")

        def fill() -> SeedSummary:
            with place.database(env, spec) as target:
                return seed_anonymised(source, target, rules, salt, statement_timeout=limit)

    return handlers.lifecycle.seed(job.key, mode.value, fill, payload.actor, runner=f"job:{job.id}")
