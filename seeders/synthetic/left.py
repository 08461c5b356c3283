"""Tables a seed leaves as the target has them: migration records, and those named ``leave``.

An environment's database gets its schema from the app's own migrations,
and the migration tool records there which ones ran. Rewriting that record
(fake versions, or production's, which lack the pull request's new
migrations) makes the next deploy re-run migrations already applied, and
fail on the tables they create. So in both modes these tables keep the
target's rows, unless the recipe or the rules name them, and so do an
app's job queues, sessions and caches (production's queued jobs would run
in the preview); a synthetic seed also leaves the records a framework
writes as it migrates and looks up by value (Django's content types,
permissions and sites). Reference data
the migrations load (countries, plans, roles) is left by naming it
``leave``; the written tables' foreign keys into it then pick from the
rows the target has. An extension's own tables (PostGIS's
``spatial_ref_sys``, pg_cron's ``cron.job``) are always left: the
extension fills them, and its code relies on what it put there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from seeders.schema.model import Schema, Table
from seeders.schema.names import own_rows
from seeders.synthetic.generator import SyntheticConfig
from seeders.synthetic.values import CannotGenerate, escape

# The most rows of a left table the written ones pick their references from.
MAX_KEYS = 100_000

# The tables of the migration tools apps use, as each names its own.
MIGRATION_TABLES = frozenset(
    {
        "schema_migrations",  # Rails, golang-migrate, dbmate, Ecto
        "ar_internal_metadata",  # Rails
        "django_migrations",  # Django
        "alembic_version",  # Alembic
        "flyway_schema_history",  # Flyway
        "schema_version",  # Flyway before 5
        "databasechangelog",  # Liquibase
        "databasechangeloglock",
        "knex_migrations",  # Knex
        "knex_migrations_lock",
        "SequelizeMeta",  # Sequelize
        "_prisma_migrations",  # Prisma
        "goose_db_version",  # goose
        "__EFMigrationsHistory",  # Entity Framework
        "pgmigrations",  # node-pg-migrate
        "mikro_orm_migrations",  # MikroORM
        "migrations",  # Laravel, TypeORM
        "__diesel_schema_migrations",  # Diesel
        "_sqlx_migrations",  # SQLx
        "schema_history",  # refinery
    }
)


# Rows a web framework writes itself as it migrates and then looks up by value:
# Django's content types and permissions (``user.has_perm("shop.change_order")``)
# and its sites (``SITE_ID = 1``). Invented ones break the app, so a synthetic
# seed leaves them; an anonymised copy takes production's, which the rest of
# production's rows point at (a generic relation's ``content_type_id``).
FRAMEWORK_TABLES = frozenset({"django_content_type", "auth_permission", "django_site"})


# The state an app keeps in its database while it runs: job queues, sessions, caches.
# Copied, a preview would run production's queued jobs (and mail its customers) and
# hold its users' sessions; invented, its workers would choke on them. So a seed leaves
# them as the environment has them. By name; a name apps also use for their own data
# (``jobs`` of a job board, ``sessions`` of a conference) only with the columns its
# framework gives it.
_RUNTIME_TABLES: dict[str, tuple[str, frozenset[str]]] = {
    name: (kind, frozenset(columns))
    for kind, tables in {
        "job queue": {
            "jobs": ("queue", "payload", "attempts"),  # Laravel
            "job_batches": ("total_jobs", "pending_jobs"),
            "failed_jobs": ("payload", "exception"),
            "delayed_jobs": (), "good_jobs": (), "good_job_batches": (),  # Rails
            "good_job_executions": (), "good_job_processes": (), "good_job_settings": (),
            "que_jobs": (), "que_lockers": (), "que_values": (),
            "solid_queue_jobs": (), "solid_queue_ready_executions": (),
            "solid_queue_claimed_executions": (), "solid_queue_blocked_executions": (),
            "solid_queue_failed_executions": (), "solid_queue_scheduled_executions": (),
            "solid_queue_recurring_executions": (), "solid_queue_recurring_tasks": (),
            "solid_queue_processes": (), "solid_queue_pauses": (), "solid_queue_semaphores": (),
            "oban_jobs": (), "oban_peers": (),  # Elixir
            "river_job": (), "river_leader": (), "river_queue": (),  # Go
            "river_client": (), "river_client_queue": (),
            "procrastinate_jobs": (), "procrastinate_events": (),  # Python
            "procrastinate_periodic_defers": (),
            "django_celery_results_taskresult": (), "django_celery_results_groupresult": (),
            "django_celery_results_chordcounter": (),
            "qrtz_job_details": (), "qrtz_triggers": (), "qrtz_simple_triggers": (),  # Quartz
            "qrtz_cron_triggers": (), "qrtz_simprop_triggers": (), "qrtz_blob_triggers": (),
            "qrtz_calendars": (), "qrtz_paused_trigger_grps": (), "qrtz_fired_triggers": (),
            "qrtz_scheduler_state": (), "qrtz_locks": (),
        },
        "sessions": {
            "django_session": (),
            "sessions": ("payload", "last_activity"),  # Laravel
            "session": ("sess", "expire"),  # connect-pg-simple
            "spring_session": (), "spring_session_attributes": (),  # Spring Session JDBC
        },
        "cache": {
            "cache": ("key", "value", "expiration"), "cache_locks": ("key", "owner", "expiration"),
            "solid_cache_entries": (), "solid_cable_messages": (),
        },
    }.items()
    for name, columns in tables.items()
}  # fmt: skip
# Whole schemas of job queues: pg-boss's, Graphile Worker's and Hangfire's.
_RUNTIME_SCHEMAS = frozenset({"pgboss", "graphile_worker", "hangfire"})


def runtime_state(table: Table) -> str | None:
    """What running state the table holds (``job queue``, ``sessions``, ``cache``), if any."""
    if table.schema in _RUNTIME_SCHEMAS:
        return "job queue"
    found = _RUNTIME_TABLES.get(table.name)
    if found is None:
        return None
    kind, columns = found
    return kind if columns <= {c.name for c in table.columns} else None


def is_migration_record(table: Table) -> bool:
    return table.name in MIGRATION_TABLES


def is_framework_record(table: Table) -> bool:
    return table.name in FRAMEWORK_TABLES


def leaves(table: Table, named: bool, named_leave: bool) -> bool:
    """Whether a seed leaves the table as the target has it.

    An extension's always; one the recipe or rules name ``leave``; a
    migration record or an app's running state (its job queue, sessions,
    cache) unless they name it at all (``named``).
    """
    unnamed = is_migration_record(table) or runtime_state(table) is not None
    return bool(table.extension) or named_leave or (not named and unnamed)


def synthetic_leaves(table: Table, named: bool, named_leave: bool) -> bool:
    """Whether a synthetic seed leaves the table: as :func:`leaves`, and a framework's records."""
    return leaves(table, named, named_leave) or (not named and is_framework_record(table))


def left_by_default(table: Table) -> str | None:
    """Why a seed leaves the table as the target has it when nothing names it, if it does."""
    if table.extension:
        return f"extension {table.extension}'s table"
    if is_migration_record(table):
        return "migration record"
    return runtime_state(table)


def references_out(schema: Schema, leaves: Callable[[Table], bool]) -> list[str]:
    """A left table referencing a written one: TRUNCATE refuses to empty a referenced table."""
    problems = []
    for table in schema.tables:
        if not leaves(table):
            continue
        for fk in table.foreign_keys:
            parent = schema.table(fk.ref_table)
            if not leaves(parent):
                problems.append(
                    f"{table.qualified} is left as the target has it, but references"
                    f" {parent.qualified} ({', '.join(fk.columns)}), which is written: leave"
                    f" {parent.qualified} too, or seed {table.qualified}"
                )
    return problems


def with_keys(
    conn: psycopg.Connection[Any], schema: Schema, config: SyntheticConfig
) -> SyntheticConfig:
    """``config`` with the keys of each left table that a written table references."""
    problems = references_out(schema, lambda t: t.qualified in config.left)
    if problems:
        raise CannotGenerate("; ".join(problems))
    wanted: dict[str, set[str]] = {}
    for table in schema.tables:
        if table.qualified in config.left:
            continue
        for fk in table.foreign_keys:
            if fk.ref_table in config.left:
                wanted.setdefault(fk.ref_table, set()).update(fk.ref_columns)
    keys = {}
    for name, columns in wanted.items():
        keys[name] = _keys(conn, schema.table(name), sorted(columns))
    return dataclasses.replace(config, left_keys=keys)


def _keys(
    conn: psycopg.Connection[Any], table: Table, columns: list[str]
) -> dict[str, tuple[str, ...]]:
    """Distinct rows of the referenced columns, none NULL (a NULL key is never referenced)."""
    names = [sql.Identifier(c) for c in columns]
    query = sql.SQL(
        "SELECT DISTINCT {text} FROM {rows} WHERE {present} ORDER BY {text} LIMIT {limit}"
    ).format(
        text=sql.SQL(", ").join(sql.SQL("{}::text").format(n) for n in names),
        rows=own_rows(table),
        present=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(n) for n in names),
        limit=sql.Literal(MAX_KEYS),
    )
    with conn.transaction():
        found = conn.execute(query).fetchall()
    return {c: tuple(escape(row[i]) for row in found) for i, c in enumerate(columns)}
