"""Seeding a database, as ``previewctl seed`` and the worker both do it.

One place turns the seeders' building blocks into a run with a clear
outcome: connect (credentials never in a message), check that there is a
schema to fill (the app's migrations create it), then replace the data
atomically. Every failure is a ConfigError (fix the input) or an
OperationFailed (the run failed and was rolled back; the old data is intact).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from envs.errors import ConfigError, OperationFailed
from seeders import checks, left, overrides, partitions
from seeders.anonymise import (
    Anonymiser,
    IncompleteCopy,
    LeakDetected,
    SchemaMismatch,
    SourceConflict,
)
from seeders.introspect import introspect
from seeders.recipe import Recipe, RecipeError
from seeders.rules import RulesError, load_rules
from seeders.subset import SubsetError
from seeders.synthetic import SyntheticGenerator, seed_database
from seeders.values import CannotGenerate

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")
MIN_SALT = 16

Planned = Callable[[Mapping[str, int | None]], None]  # table → rows expected (None: unknown)
Advanced = Callable[[str, int], None]  # table, rows just loaded


def redact(url: str) -> str:
    """A database URL safe to print: the password replaced by ***."""
    return _PASSWORD.sub(r"\1***@", url)


def connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        message = str(exc).replace(url, redact(url))
        raise OperationFailed(f"cannot connect to {redact(url)}: {message}") from None


@dataclass(frozen=True)
class SeedSummary:
    mode: str
    rows: Mapping[str, int]
    seconds: float
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def describe(self) -> str:
        return f"{self.mode}: {self.total_rows:,} rows in {len(self.rows)} tables"

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rows": dict(self.rows),
            "total_rows": self.total_rows,
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


def _noop_plan(_: Mapping[str, int | None]) -> None:
    pass


def _noop_advance(_: str, __: int) -> None:
    pass


def seed_synthetic(
    database_url: str,
    recipe: Recipe,
    planned: Planned = _noop_plan,
    advanced: Advanced = _noop_advance,
) -> SeedSummary:
    """Replace every table's rows with generated, constraint-correct data (atomic)."""
    with connect(database_url) as conn:
        schema = introspect(conn)
        if not schema.tables:
            raise ConfigError(
                f"{redact(database_url)} has no tables; apply the app's migrations first"
            )
        try:
            config = recipe.config(schema)
            overrides.check(conn, schema, config)
            config = partitions.fit(conn, schema, config)
            config = left.with_keys(conn, schema, config)
            generator = SyntheticGenerator(schema, checks.fit(conn, schema, config))
        except (RecipeError, CannotGenerate, KeyError) as exc:
            raise ConfigError(str(exc).strip("'\"")) from None
        planned({name: generator.plans[name].rows for name in generator.written})
        try:
            report = seed_database(conn, generator, advanced)
        except CannotGenerate as exc:  # a table's own columns, planned as it is written
            raise ConfigError(f"{exc}; nothing was written") from None
        except psycopg.Error as exc:
            raise OperationFailed(
                f"seeding failed and was rolled back, the previous data is intact: {exc}"
            ) from None
    capped = {t: {"rows": n, "why": why} for t, (n, why) in sorted(generator.capped.items())}
    extra = {
        "seed": recipe.seed,
        "left": sorted(config.left),
        "nulled": generator.nulled,
        "capped": capped,
    }
    return SeedSummary("synthetic", dict(report.rows), report.seconds, extra)


def seed_anonymised(
    source_url: str,
    target_url: str,
    rules_path: Path,
    salt: str,
    planned: Planned = _noop_plan,
    advanced: Advanced = _noop_advance,
    salt_name: str = "PREVIEW_ANONYMISE_SALT",
    jobs: int = 2,
) -> SeedSummary:
    """Copy the source into the target with every column's rule applied, then prove no leak.

    ``jobs`` source connections read in parallel, a large table split
    between them and small tables ahead of the load (the transforms run on
    the source, one server core per connection).
    """
    if len(salt) < MIN_SALT:
        raise ConfigError(
            f"{salt_name} must hold a secret salt of at least {MIN_SALT} characters "
            "(e.g. `openssl rand -hex 32`); it keys every pseudonym"
        )
    try:
        rules = load_rules(rules_path)
    except RulesError as exc:
        raise ConfigError(str(exc)) from None
    with (
        connect(source_url) as source,
        connect(target_url) as target,
        connect(target_url) as scratch,
    ):
        try:
            anonymiser = Anonymiser(
                source, target, scratch, rules, salt.encode(), lambda: connect(source_url), jobs
            )
        except (RulesError, SchemaMismatch, SubsetError) as exc:
            raise ConfigError(f"{rules_path}: nothing was written:\n{exc}") from None
        planned({t.qualified: t.estimated_rows or None for t in anonymiser.copied_schema.tables})
        try:
            report = anonymiser.run(advanced)
        except (LeakDetected, IncompleteCopy, SourceConflict) as exc:
            raise OperationFailed(str(exc)) from None
        except SchemaMismatch as exc:  # the source's rows do not fit the target's columns
            raise ConfigError(str(exc)) from None
        except psycopg.Error as exc:
            explained = anonymiser.explained(exc)
            if explained is not None:  # a rule's values a constraint of the target refused
                raise ConfigError(f"{rules_path}: {explained}") from None
            raise OperationFailed(f"anonymisation failed and was rolled back: {exc}") from None
    leak = {"digests": report.digests, "hits": report.leak_hits}
    extra = {"leak_check": leak, "skipped": anonymiser.skipped, "left": report.left}
    return SeedSummary("anonymised", dict(report.rows), report.seconds, extra)
