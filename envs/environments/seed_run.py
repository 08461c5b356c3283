"""Seeding one environment as its spec says: the worker's seed job and ``previewctl up`` alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from envs.core.errors import ConfigError
from envs.core.model import (
    Environment,
    EnvironmentKey,
    EnvironmentStatus,
    OperationKind,
    OperationResult,
)
from envs.core.seed_summary import SeedSummary
from envs.core.spec import EnvironmentSpec, SeedMode
from envs.environments.lifecycle import Lifecycle
from envs.environments.seeding import seed_anonymised, seed_synthetic
from envs.store import Store
from seeders.synthetic.recipe import Recipe, RecipeError, load_recipe


@dataclass(frozen=True)
class SeedPlace:
    """Where seeding finds its inputs.

    ``database`` opens the way to the environment's database as the worker
    reaches it and gives its URL for the time of the ``with`` block: in-cluster
    service DNS (admitted by the allow-seeding NetworkPolicy), or a port-forward
    through the API server for a worker outside the cluster. ``spec_dir`` is the
    directory of the repository's spec, against which recipe and rules paths
    resolve; ``environ`` holds the source URL and the salt.
    """

    database: Callable[[Environment, EnvironmentSpec], AbstractContextManager[str]]
    spec_dir: Callable[[str], Path]
    environ: Mapping[str, str]


def seeded_since_created(store: Store, key: EnvironmentKey) -> bool:
    """Whether this environment's database got its data: seeding follows the first deploy
    that succeeds, which is not always the first attempt (a failed one already created
    the empty database). After that the data is the developer's; a reseed replaces it
    on request only.
    """
    env = store.get(key)
    if env is None:
        return False
    return any(
        op.kind is OperationKind.RESEED
        and op.result is OperationResult.SUCCEEDED
        and op.started_at >= env.created_at
        for op in store.operations(key.repository, key.pr_number, limit=200)
    )


def seed_environment(
    lifecycle: Lifecycle,
    place: SeedPlace,
    spec: EnvironmentSpec,
    key: EnvironmentKey,
    mode: SeedMode,
    actor: str,
    runner: str | None = None,
) -> SeedSummary:
    """Fill the ready environment ``key``'s database by ``mode``; journalled and audited.

    A wrong input (no mode, a missing recipe or source) is a :class:`ConfigError`
    naming it; a failed fill is an ``OperationFailed`` from the lifecycle.
    """
    if mode is SeedMode.NONE:
        raise ConfigError("this repository's spec has no seed mode (seed.mode)")
    env = lifecycle.store.get(key)
    if env is None or env.status is not EnvironmentStatus.READY:
        raise ConfigError("there is no ready environment to seed; deploy it first")
    limit = spec.seed.statement_timeout  # the PR's database: its checks are its author's
    rules = place.spec_dir(key.repository) / spec.seed.rules if spec.seed.rules else None
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

    return lifecycle.seed(key, mode.value, fill, actor, runner=runner)
