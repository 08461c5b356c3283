"""``previewctl seed``: fill a preview database with data worth testing against."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg import sql
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

from envs.cli.output import emit_json, err, out
from envs.errors import ConfigError, OperationFailed
from seeders.anonymise import Anonymiser, LeakDetected, SchemaMismatch
from seeders.introspect import introspect
from seeders.pii import guess
from seeders.recipe import Recipe, RecipeError, load_recipe
from seeders.rules import RulesError, load_rules
from seeders.schema import Schema
from seeders.synthetic import SyntheticGenerator, seed_database
from seeders.values import CannotGenerate

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


def redact(url: str) -> str:
    """A database URL safe to print: the password replaced by ***."""
    return _PASSWORD.sub(r"\1***@", url)


def connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        message = str(exc).replace(url, redact(url))
        raise OperationFailed(f"cannot connect to {redact(url)}: {message}") from None


@click.group()
def seed() -> None:
    """Seed a database with synthetic data, or inspect it for personal data."""


@seed.command()
@click.option("--database-url", required=True, envvar="PREVIEW_SEED_DATABASE_URL", help="Target.")
@click.option(
    "--config", "recipe_path", type=click.Path(path_type=Path, dir_okay=False), help="Recipe YAML."
)
@click.option("--rows", type=click.IntRange(min=0), help="Rows per table (overrides the recipe).")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), help="Multiply every count.")
@click.option("--seed", "seed_value", type=int, help="Random seed (same seed, same data).")
@click.option("--json", "as_json", is_flag=True)
def synthetic(
    database_url: str,
    recipe_path: Path | None,
    rows: int | None,
    scale: float | None,
    seed_value: int | None,
    as_json: bool,
) -> None:
    """Replace every table's rows with generated, constraint-correct data (atomic)."""
    try:
        recipe = load_recipe(recipe_path) if recipe_path else Recipe()
    except RecipeError as exc:
        raise ConfigError(str(exc)) from None
    updates = {
        k: v for k, v in (("rows", rows), ("scale", scale), ("seed", seed_value)) if v is not None
    }
    recipe = recipe.model_copy(update=updates)
    with connect(database_url) as conn:
        schema = introspect(conn)
        if not schema.tables:
            raise ConfigError(
                f"{redact(database_url)} has no tables; apply the app's migrations first"
            )
        try:
            generator = SyntheticGenerator(schema, recipe.config(schema))
        except (RecipeError, CannotGenerate, KeyError) as exc:
            raise ConfigError(str(exc).strip("'\"")) from None
        totals = {name: generator.plans[name].rows for name in generator.order.tables}
        with _progress(as_json) as progress:
            tasks = {name: progress.add_task(name, total=totals[name]) for name in totals}
            try:
                report = seed_database(
                    conn, generator, lambda table, n: progress.advance(tasks[table], n)
                )
            except psycopg.Error as exc:
                raise OperationFailed(
                    f"seeding failed and was rolled back, the previous data is intact: {exc}"
                ) from None
    summary = {
        "mode": "synthetic",
        "rows": report.rows,
        "total_rows": report.total_rows,
        "seconds": round(report.seconds, 3),
        "rows_per_s": round(report.rows_per_second),
        "seed": recipe.seed,
    }
    if as_json:
        emit_json(summary)
    else:
        out.print(
            f"[green]seeded[/green] {report.total_rows:,} rows in {len(report.rows)} tables "
            f"in {report.seconds:.1f}s ({report.rows_per_second:,.0f} rows/s, seed {recipe.seed})",
            markup=True,
        )


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:>9,.0f}/s")


@seed.command()
@click.option(
    "--source",
    "source_url",
    required=True,
    envvar="PREVIEW_SEED_SOURCE_URL",
    help="Source database (a replica or snapshot; opened read-only).",
)
@click.option(
    "--target",
    "target_url",
    required=True,
    envvar="PREVIEW_SEED_DATABASE_URL",
    help="Target database; its tables are replaced.",
)
@click.option(
    "--rules", "rules_path", required=True, type=click.Path(path_type=Path, dir_okay=False)
)
@click.option(
    "--salt-env",
    default="PREVIEW_ANONYMISE_SALT",
    show_default=True,
    help="Variable holding the secret salt (same salt, same pseudonyms).",
)
@click.option("--json", "as_json", is_flag=True)
def anonymise(
    source_url: str, target_url: str, rules_path: Path, salt_env: str, as_json: bool
) -> None:
    """Copy SOURCE to TARGET with every column's rule applied; refuse unruled columns."""
    salt = os.environ.get(salt_env, "")
    if len(salt) < 16:
        raise ConfigError(
            f"{salt_env} must hold a secret salt of at least 16 characters "
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
            anonymiser = Anonymiser(source, target, scratch, rules, salt.encode())
        except (RulesError, SchemaMismatch) as exc:
            raise ConfigError(f"{rules_path}: nothing was written:\n{exc}") from None
        sizes = {t.qualified: t.estimated_rows for t in anonymiser.source_schema.tables}
        with _progress(as_json) as progress:
            tasks = {name: progress.add_task(name, total=sizes[name] or None) for name in sizes}
            try:
                report = anonymiser.run(lambda table, n: progress.advance(tasks[table], n))
            except LeakDetected as exc:
                raise OperationFailed(str(exc)) from None
            except psycopg.Error as exc:
                raise OperationFailed(f"anonymisation failed and was rolled back: {exc}") from None
    summary = {
        "mode": "anonymised",
        "rows": report.rows,
        "total_rows": report.total_rows,
        "seconds": round(report.seconds, 3),
        "leak_check": {"digests": report.digests, "hits": report.leak_hits},
    }
    if as_json:
        emit_json(summary)
    else:
        out.print(
            f"[green]anonymised[/green] {report.total_rows:,} rows in {len(report.rows)} tables "
            f"in {report.seconds:.1f}s; leak check: {report.digests:,} originals, 0 found",
            markup=True,
        )


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )


@seed.command()
@click.argument("database_url")
@click.option(
    "--rules-out", type=click.Path(path_type=Path, dir_okay=False), help="Write starting rules."
)
@click.option("--json", "as_json", is_flag=True)
def inspect(database_url: str, rules_out: Path | None, as_json: bool) -> None:
    """Print the schema, guess which columns hold personal data, write starting rules."""
    with connect(database_url) as conn:
        schema = introspect(conn)
        guesses = _guesses(conn, schema)
    if rules_out:
        rules_out.write_text(rules_text(schema, guesses), encoding="utf-8")
        err.print(f"wrote {rules_out}")
    if as_json:
        emit_json(
            {
                t.qualified: {
                    "rows_estimate": t.estimated_rows,
                    "primary_key": list(t.primary_key),
                    "foreign_keys": [
                        {"columns": list(fk.columns), "references": fk.ref_table}
                        for fk in t.foreign_keys
                    ],
                    "columns": {
                        c.name: {
                            "type": c.type_name,
                            "nullable": c.nullable,
                            "pii": guesses.get((t.qualified, c.name)),
                        }
                        for c in t.columns
                    },
                }
                for t in schema.tables
            }
        )
        return
    for table in schema.tables:
        view = RichTable(
            title=f"{table.qualified} (~{table.estimated_rows:,} rows)", title_justify="left"
        )
        for heading in ("column", "type", "null", "key", "personal data?"):
            view.add_column(heading)
        for column in table.columns:
            keys = []
            if column.name in table.primary_key:
                keys.append("PK")
            keys += [f"FK→{fk.ref_table}" for fk in table.foreign_keys if column.name in fk.columns]
            pii = guesses.get((table.qualified, column.name))
            view.add_row(
                column.name,
                column.type_name,
                "yes" if column.nullable else "",
                " ".join(keys),
                pii or "",
            )
        out.print(view)


def _guesses(conn: psycopg.Connection[Any], schema: Schema) -> dict[tuple[str, str], str]:
    found = {}
    for table in schema.tables:
        for column in table.columns:
            query = sql.SQL("SELECT {}::text FROM {} WHERE {} IS NOT NULL LIMIT 50").format(
                sql.Identifier(column.name),
                sql.Identifier(table.schema, table.name),
                sql.Identifier(column.name),
            )
            samples = [row[0] for row in conn.execute(query)]
            hit = guess(column, samples)
            if hit is not None:
                found[(table.qualified, column.name)] = f"{hit.suggestion} (by {hit.reason})"
    return found


def rules_text(schema: Schema, guesses: dict[tuple[str, str], str]) -> str:
    """A starting rules file: `keep` for the rest, a transformer for every guess."""
    lines = [
        "# Starting anonymisation rules written by `previewctl seed inspect`.",
        "# Every column needs a rule: a column without one is never copied.",
        "# Review each line; guesses are marked.",
        "version: 1",
        "tables:",
    ]
    for table in schema.tables:
        lines.append(f"  {table.qualified}:")
        for column in table.columns:
            hit = guesses.get((table.qualified, column.name))
            if hit is None:
                lines.append(f"    {column.name}: keep")
                continue
            suggestion = hit.split(" ", 1)[0]
            rule = {"hash": "hash", "noise": "{noise: 0.1}"}.get(
                suggestion, f"{{fake: {suggestion}}}"
            )
            lines.append(f"    {column.name}: {rule}  # guess: {hit}")
    return "\n".join(lines) + "\n"
