"""``previewctl seed``: fill a preview database with data worth testing against."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg import sql
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

from envs.cli.options import json_option
from envs.cli.output import emit_json, err, out
from envs.core.errors import ConfigError
from envs.core.seed_summary import SeedSummary
from envs.environments.seeding import (
    Advanced,
    Planned,
    connect,
    seed_anonymised,
    seed_synthetic,
)
from seeders.anonymise.pii import PiiGuess, credential_tables, describe, guess, starting_rules
from seeders.schema.introspect import introspect
from seeders.schema.model import Schema
from seeders.schema.model import Table as SchemaTable
from seeders.synthetic import polymorphic
from seeders.synthetic.left import left_by_default
from seeders.synthetic.recipe import Recipe, RecipeError, load_recipe


@click.group()
def seed() -> None:
    """Seed a database with synthetic data, or inspect it for personal data."""


@seed.command()
@click.option(
    "--database-url",
    required=True,
    envvar="PREVIEW_SEED_DATABASE_URL",
    help="Database whose tables are replaced (PREVIEW_SEED_DATABASE_URL).",
)
@click.option(
    "--config",
    "recipe_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Recipe YAML: rows per table, values per column, tables to leave.",
)
@click.option("--rows", type=click.IntRange(min=0), help="Rows per table (overrides the recipe).")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), help="Multiply every count.")
@click.option("--seed", "seed_value", type=int, help="Random seed (same seed, same data).")
@json_option
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
    with _progress(as_json) as progress:
        summary = seed_synthetic(database_url, recipe, *_tracking(progress))
    if as_json:
        emit_json(summary.to_json() | {"rows_per_s": round(_rate(summary))})
    else:
        out.print(
            f"[green]seeded[/green] {summary.total_rows:,} rows in {len(summary.rows)} tables "
            f"in {summary.seconds:.1f}s ({_rate(summary):,.0f} rows/s, seed {recipe.seed})"
            + _left(summary.extra["left"])
            + _nulled(summary.extra["nulled"])
            + _capped(summary.extra["capped"]),
            markup=True,
        )


def _rate(summary: SeedSummary) -> float:
    return summary.total_rows / summary.seconds if summary.seconds else 0.0


def _tracking(progress: Progress) -> tuple[Planned, Advanced]:
    """Progress bars for a seeding run: one task per table, created when the plan is known."""
    tasks: dict[str, TaskID] = {}
    started: set[TaskID] = set()

    def planned(totals: Mapping[str, int | None]) -> None:
        for name, total in totals.items():
            tasks[name] = progress.add_task(name, total=total, start=False)

    def advanced(table: str, rows: int) -> None:
        # A table's clock starts when its rows begin (the loader says so with
        # 0 rows, or an anonymiser's reader, from its thread, when it starts on
        # the table ahead of the load), not when the plan is known: its time
        # and rate are its own. (Rich's Progress takes calls from any thread.)
        task = tasks.get(table)
        if task is None:  # a table loaded empty (skipped): no bar was planned for it
            return
        if task not in started:
            started.add(task)
            progress.start_task(task)
        progress.advance(task, rows)

    return planned, advanced


class RowsPerSecond(ProgressColumn):
    """A table's rows per second: while it loads, and the rate it finished at."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed if task.finished else task.speed
        return Text(f"{speed or 0:>9,.0f}/s")


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
    "--rules",
    "rules_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Rules YAML: one rule per column (`seed inspect --rules-out` writes a start).",
)
@click.option(
    "--salt-env",
    default="PREVIEW_ANONYMISE_SALT",
    show_default=True,
    help="Variable holding the secret salt (same salt, same pseudonyms).",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Source connections reading in parallel, one source core each: a large table split"
    " between them, small tables read ahead of the load.",
)
@json_option
def anonymise(
    source_url: str, target_url: str, rules_path: Path, salt_env: str, jobs: int, as_json: bool
) -> None:
    """Copy SOURCE to TARGET with every column's rule applied; refuse unruled columns."""
    with _progress(as_json) as progress:
        summary = seed_anonymised(
            source_url,
            target_url,
            rules_path,
            os.environ.get(salt_env, ""),
            *_tracking(progress),
            salt_name=salt_env,
            jobs=jobs,
        )
    if as_json:
        emit_json(summary.to_json())
    else:
        digests = summary.extra["leak_check"]["digests"]
        skipped = summary.extra["skipped"]
        out.print(
            f"[green]anonymised[/green] {summary.total_rows:,} rows in {len(summary.rows)} tables "
            + (f"({len(skipped)} skipped, left empty) " if skipped else "")
            + f"in {summary.seconds:.1f}s; leak check: {digests:,} originals, 0 found"
            + _left(summary.extra["left"]),
            markup=True,
        )


def _nulled(columns: list[str]) -> str:
    """Columns of types the seeder has no values of, so that nobody mistakes NULL for data."""
    if not columns:
        return ""
    return escape(f"; left NULL (give them values in the recipe): {', '.join(columns)}")


def _capped(tables: dict[str, dict[str, Any]]) -> str:
    """Tables a key let have fewer rows than asked, so a short count is not taken for a bug."""
    if not tables:
        return ""
    said = ", ".join(f"{t} {c['rows']:,} ({c['why']})" for t, c in tables.items())
    return escape(f"; fewer rows than asked in {said}")


def _left(tables: list[str]) -> str:
    """The tables whose rows the target kept, so nobody wonders why they were not seeded."""
    return f"; kept the target's rows in {escape(', '.join(tables))}" if tables else ""


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
@click.option(
    "--sample-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Seconds to spend reading one column's sample values.",
)
@json_option
def inspect(
    database_url: str, rules_out: Path | None, sample_timeout: float, as_json: bool
) -> None:
    """Print the schema, guess which columns hold personal data, write starting rules."""
    with connect(database_url) as conn:
        schema = introspect(conn)
        guesses, unsampled = _guesses(conn, schema, sample_timeout)
    if unsampled:
        err.print(
            f"{len(unsampled)} columns were guessed by name only: reading their values took"
            f" over {sample_timeout:g} s (mostly NULL in a large table?): "
            + ", ".join(f"{t}.{c}" for t, c in unsampled)
            + ". Review their rules with that in mind, or pass a longer --sample-timeout.",
            markup=False,
        )
    if rules_out:
        rules_out.write_text(rules_text(schema, guesses), encoding="utf-8")
        err.print(f"wrote {rules_out}")
    if as_json:
        emit_json(
            {
                t.qualified: {
                    "rows_estimate": t.estimated_rows,
                    "left_by_default": left_by_default(t),
                    "primary_key": list(t.primary_key),
                    "foreign_keys": [
                        {"columns": list(fk.columns), "references": fk.ref_table}
                        for fk in t.foreign_keys
                    ],
                    "columns": {
                        c.name: {
                            "type": c.type_name,
                            "nullable": c.nullable,
                            "pii": _described(guesses.get((t.qualified, c.name))),
                            "sampled": (t.qualified, c.name) not in unsampled,
                        }
                        | ({"fields": {f.name: f.type_name for f in c.fields}} if c.fields else {})
                        for c in t.columns
                    },
                }
                for t in schema.tables
            }
        )
        return
    for table in schema.tables:
        reason = left_by_default(table)
        left = f" — {reason}, left as the target has it" if reason else ""
        view = RichTable(
            title=escape(f"{table.qualified} (~{table.estimated_rows:,} rows){left}"),
            title_justify="left",
        )
        for heading in ("column", "type", "null", "key", "personal data?"):
            view.add_column(heading)
        for column in table.columns:
            keys = []
            if column.name in table.primary_key:
                keys.append("PK")
            keys += [f"FK→{fk.ref_table}" for fk in table.foreign_keys if column.name in fk.columns]
            pii = _described(guesses.get((table.qualified, column.name)))
            fields = ", ".join(f"{f.name} {f.type_name}" for f in column.fields)
            view.add_row(
                escape(column.name),
                escape(column.type_name + (f" ({fields})" if fields else "")),
                "yes" if column.nullable else "",
                " ".join(keys),
                pii or "",
            )
        out.print(view)


def _described(hit: PiiGuess | None) -> str | None:
    return describe(hit) if hit else None


def _guesses(
    conn: psycopg.Connection[Any], schema: Schema, timeout: float
) -> tuple[dict[tuple[str, str], PiiGuess], list[tuple[str, str]]]:
    """Each column's guess, and the columns whose values could not be sampled in time.

    The session reads only, and each sample query stops after ``timeout``:
    set once for the (autocommit) connection, not per column, so a schema of
    thousands of columns costs one round trip each, as before.
    """
    conn.execute(
        "SELECT set_config('default_transaction_read_only', 'on', false),"
        " set_config('statement_timeout', %s, false)",
        (str(max(1, round(timeout * 1000))),),
    )
    found, unsampled = {}, []
    for table in schema.tables:
        # A polymorphic reference's type names a model (App\Models\User), no one.
        pointing = {name for name, _ in polymorphic.pairs(table)}
        for column in table.columns:
            if column.generated or column.name in pointing:
                continue  # computed by the server, or a class name: no rule to guess
            samples = _samples(conn, table, column.name)
            if samples is None:
                unsampled.append((table.qualified, column.name))
            hit = guess(column, samples or [], table.name)
            if hit is not None:
                found[(table.qualified, column.name)] = hit
    return found, unsampled


def _samples(conn: psycopg.Connection[Any], table: SchemaTable, column: str) -> list[str] | None:
    """Up to 50 of a column's values as text, or None if the session's timeout cut it short.

    ``IS NOT NULL LIMIT 50`` stops early in a column that holds values, but
    reads a whole table for one that is mostly NULL: against a production
    replica of large tables, one such column would hold inspect up for hours.
    """
    query = sql.SQL("SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL LIMIT 50").format(
        c=sql.Identifier(column), t=sql.Identifier(table.schema, table.name)
    )
    try:
        return [row[0] for row in conn.execute(query)]
    except psycopg.errors.QueryCanceled:
        return None


def rules_text(schema: Schema, guesses: Mapping[tuple[str, str], PiiGuess]) -> str:
    """A starting rules file: `keep` for the rest, a rule the column takes for every guess."""
    lines = [
        "# Starting anonymisation rules written by `previewctl seed inspect`.",
        "# Every column needs a rule: a column without one is never copied.",
        "# Review each line; guesses are marked.",
        "version: 1",
        "tables:",
    ]
    ruled = starting_rules(schema, guesses)
    emptied = credential_tables(schema, lambda t: left_by_default(t) is not None)
    for table in schema.tables:
        reason = left_by_default(table)
        if reason:
            lines.append(f"  {table.qualified}: leave  # {reason}: the target's rows stay")
            continue
        if table.qualified in emptied:
            lines.append(f"  {table.qualified}: skip  # credentials: copied empty, no one's key")
            continue
        lines.append(f"  {table.qualified}:")
        for column in table.columns:
            if column.generated:  # computed by the target from the row's anonymised values
                lines.append(f"    # {column.name}: generated by the server, needs no rule")
                continue
            rule, comment = ruled.get((table.qualified, column.name), ("keep", ""))
            lines.append(f"    {column.name}: {rule}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"
