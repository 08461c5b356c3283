"""Seeding a database, as ``previewctl seed`` and the worker both do it.

One place turns the seeders' building blocks into a run with a clear
outcome: connect (credentials never in a message), check that there is a
schema to fill (the app's migrations create it), then replace the data
atomically. Every failure is a ConfigError (fix the input) or an
OperationFailed (the run failed and was rolled back; the old data is intact).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from envs.core.errors import ConfigError, OperationFailed, PreviewError, public_text
from envs.core.redaction import redact, scrub
from envs.core.seed_summary import SeedSummary
from envs.core.spec import format_duration
from seeders.anonymise.anonymiser import (
    Anonymiser,
    AnonymiseReport,
    IncompleteCopy,
    LeakDetected,
    SchemaMismatch,
    SourceConflict,
)
from seeders.anonymise.rules import Rules, RulesError, load_rules
from seeders.anonymise.session import bounded
from seeders.anonymise.subset import SubsetError
from seeders.schema.introspect import introspect
from seeders.synthetic import checks, left, overrides, partitions
from seeders.synthetic.generator import SyntheticGenerator, seed_database
from seeders.synthetic.recipe import Recipe, RecipeError
from seeders.synthetic.values import CannotGenerate

log = logging.getLogger(__name__)
MIN_SALT = 16

Planned = Callable[[Mapping[str, int | None]], None]  # table → rows expected (None: unknown)
Advanced = Callable[[str, int], None]  # table, rows just loaded


def connect(url: str, role: str | None = None) -> psycopg.Connection[Any]:
    """A connection to ``url``; ``role`` names it where the URL must not be shown (a source)."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except (psycopg.OperationalError, psycopg.ProgrammingError, ValueError) as exc:
        message = scrub(str(exc), url)
        public = None if role is None else f"cannot connect to {role}; see the service log"
        raise OperationFailed(
            f"cannot connect to {redact(url)}: {message}", public=public
        ) from None


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def _noop_plan(_: Mapping[str, int | None]) -> None:
    pass


def _noop_advance(_: str, __: int) -> None:
    pass


def seed_synthetic(
    database_url: str,
    recipe: Recipe,
    planned: Planned = _noop_plan,
    advanced: Advanced = _noop_advance,
    statement_timeout: timedelta | None = None,
) -> SeedSummary:
    """Replace every table's rows with generated, constraint-correct data (atomic).

    ``statement_timeout`` bounds each statement on the database (the pull
    request's: its checks and indexes are its author's), see ``session.bounded``.
    """
    try:
        return _synthetic(database_url, recipe, planned, advanced, statement_timeout)
    except psycopg.errors.QueryCanceled as exc:
        raise _timed_out(statement_timeout, exc) from None


def _timed_out(limit: timedelta | None, error: psycopg.Error) -> OperationFailed:
    if limit is None:
        said = "its limit"
    elif limit < timedelta(minutes=1):
        said = f"{limit.total_seconds():g}s"
    else:
        said = format_duration(limit)
    return OperationFailed(
        f"a statement on the preview's database ran longer than seed.statement_timeout"
        f" ({said}) and was cancelled; nothing was written. A CHECK, index or default of the"
        f" pull request's may be slow, or a session of its app holds a lock: {error}",
        public=f"a statement on the preview's database ran longer than seed.statement_timeout"
        f" ({said}) and was cancelled; nothing was written. A CHECK, index or default of the"
        " pull request's may be slow, or a session of its app holds a lock",
    )


def _synthetic(
    database_url: str,
    recipe: Recipe,
    planned: Planned,
    advanced: Advanced,
    statement_timeout: timedelta | None,
) -> SeedSummary:
    with connect(database_url) as conn:
        bounded(conn, _seconds(statement_timeout))
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
        except psycopg.errors.QueryCanceled:
            raise
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
    statement_timeout: timedelta | None = None,
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
    try:
        report, anonymiser = _anonymise(
            source_url,
            target_url,
            rules,
            rules_path,
            salt,
            jobs,
            statement_timeout,
            planned,
            advanced,
        )
    except PreviewError:
        raise
    except Exception as exc:
        # Not a failure this module knows: its text may hold a source value.
        log.exception("anonymised seeding failed unexpectedly")
        raise OperationFailed(
            f"anonymisation failed and was rolled back: {type(exc).__name__}: {exc}",
            public=f"anonymisation failed and was rolled back; {_IN_THE_LOG}",
        ) from exc
    leak = {"digests": report.digests, "hits": report.leak_hits}
    extra = {"leak_check": leak, "skipped": anonymiser.skipped, "left": report.left}
    return SeedSummary("anonymised", dict(report.rows), report.seconds, extra)


# What the PR is told instead of the server's words, which may quote the source's rows.
_IN_THE_LOG = "the server's error is in the service log and in `previewctl audit`"


def _anonymise(
    source_url: str,
    target_url: str,
    rules: Rules,
    rules_path: Path,
    salt: str,
    jobs: int,
    statement_timeout: timedelta | None,
    planned: Planned,
    advanced: Advanced,
) -> tuple[AnonymiseReport, Anonymiser]:
    """The copy, its failures as errors whose ``public`` text holds no source value or count.

    The target is the pull request's database, so what reaches the PR may
    name tables, columns, constraints and rules, and say what to change,
    but never quote a row, a key or a count read from the source: those
    stay in the full message, for the service log and the audit.
    """
    where = rules_path.name
    with (
        connect(source_url, role="the anonymisation source") as source,
        connect(target_url) as target,
        connect(target_url) as scratch,
    ):
        try:
            anonymiser = Anonymiser(
                source,
                target,
                scratch,
                rules,
                salt.encode(),
                lambda: connect(source_url, "the source"),
                jobs,
                _seconds(statement_timeout),
            )
        except (RulesError, SchemaMismatch, SubsetError) as exc:
            raise ConfigError(
                f"{rules_path}: nothing was written:\n{exc}",
                public=f"{where}: nothing was written:\n{public_text(exc)}",
            ) from None
        planned({t.qualified: t.estimated_rows or None for t in anonymiser.copied_schema.tables})
        try:
            return anonymiser.run(advanced), anonymiser
        except (LeakDetected, IncompleteCopy, SourceConflict) as exc:
            raise OperationFailed(str(exc), public=public_text(exc)) from None
        except SchemaMismatch as exc:  # the source's rows do not fit the target's columns
            raise ConfigError(str(exc), public=public_text(exc)) from None
        except psycopg.errors.QueryCanceled as exc:
            raise _timed_out(statement_timeout, exc) from None
        except psycopg.Error as exc:
            explained = anonymiser.explained(exc)
            if explained is not None:  # a rule's values a constraint of the target refused
                raise ConfigError(
                    f"{rules_path}: {explained}\n{exc}", public=f"{where}: {explained}"
                ) from None
            raise OperationFailed(
                f"anonymisation failed and was rolled back: {exc}",
                public=f"anonymisation failed and was rolled back; {_IN_THE_LOG}",
            ) from None
