"""Tables a seed leaves as the target has them: migration records and named reference data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from envs.cli.main import main
from envs.cli.seed import rules_text
from seeders.schema.introspect import introspect
from tests.pg_server import PgServer
from tests.seeders.connections import copy_between, databases, rows, rules_for

# An app after its migrations ran: their record, the reference data one loaded, and
# a table of an extension's (as PostGIS's spatial_ref_sys, which the app references).
APP = """
    CREATE EXTENSION citext;
    CREATE TABLE spatial_refs (srid int PRIMARY KEY, name text NOT NULL);
    INSERT INTO spatial_refs VALUES (4326, 'WGS 84'), (3857, 'Pseudo-Mercator');
    ALTER EXTENSION citext ADD TABLE spatial_refs;
    CREATE TABLE schema_migrations (version varchar PRIMARY KEY);
    CREATE TABLE "SequelizeMeta" (name varchar PRIMARY KEY);
    CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
    CREATE TABLE customers (
        id bigserial PRIMARY KEY,
        email text NOT NULL UNIQUE,
        country char(2) NOT NULL REFERENCES countries,
        srid int NOT NULL REFERENCES spatial_refs
    );
"""
MIGRATED = """
    INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240202000000');
    INSERT INTO "SequelizeMeta" VALUES ('20240101-create-customers.js');
    INSERT INTO countries VALUES ('DE', 'Germany'), ('FR', 'France'), ('NL', 'Netherlands');
"""
RECORDS = "SELECT version FROM schema_migrations ORDER BY 1"


def _app(pg_server: PgServer, name: str) -> str:
    url = pg_server.create_database(name)
    execute(url, APP + MIGRATED)
    return url


def execute(url: str, statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statements.encode())


def _recipe(tmp_path: Path, tables: dict[str, Any]) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"tables": tables}))
    return str(path)


def test_synthetic_keeps_the_migration_record_and_named_reference_data(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the record was refilled with invented versions: the next deploy re-ran them all."""
    source = _app(pg_server, "left_synthetic")
    recipe = _recipe(tmp_path, {"countries": "leave", "customers": {"rows": 300}})
    args = ["seed", "synthetic", "--database-url", source, "--config", recipe]
    capsys.readouterr()
    assert main(args) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "kept the target's rows in public.SequelizeMeta, public.countries," in printed
    assert rows(source, "SELECT srid FROM spatial_refs ORDER BY 1") == [(3857,), (4326,)]
    assert rows(source, "SELECT count(DISTINCT srid) FROM customers") == [(2,)]
    assert rows(source, RECORDS) == [("20240101000000",), ("20240202000000",)]
    assert rows(source, 'SELECT count(*) FROM "SequelizeMeta"') == [(1,)]
    assert rows(source, "SELECT count(*) FROM countries") == [(3,)]
    # The written table's foreign key picks from the rows the target kept, all of them.
    assert rows(source, "SELECT count(*), count(DISTINCT country) FROM customers") == [(300, 3)]
    # Named in the recipe, a migration record is seeded like any table.
    recipe = _recipe(tmp_path, {"countries": "leave", "schema_migrations": {"rows": 5}})
    assert main(["seed", "synthetic", "--database-url", source, "--config", recipe]) == 0
    assert rows(source, "SELECT count(*) FROM schema_migrations") == [(5,)]
    # An extension's table is never the seed's to write.
    recipe = _recipe(tmp_path, {"spatial_refs": {"rows": 5}})
    capsys.readouterr()
    assert main(["seed", "synthetic", "--database-url", source, "--config", recipe]) == 2
    assert "spatial_refs: belongs to extension citext" in capsys.readouterr().err


def test_synthetic_refuses_what_a_left_table_cannot_give(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _app(pg_server, "left_refused")
    # A left table referencing a written one: emptying that one is refused by the server.
    execute(source, "ALTER TABLE countries ADD owner bigint REFERENCES customers")
    recipe = _recipe(tmp_path, {"countries": "leave"})
    capsys.readouterr()
    assert main(["seed", "synthetic", "--database-url", source, "--config", recipe]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "public.countries is left as the target has it, but references public.customers" in err
    execute(source, "ALTER TABLE countries DROP owner")
    # An empty left table cannot give a NOT NULL foreign key a row to point at.
    execute(source, "TRUNCATE countries CASCADE")
    assert main(["seed", "synthetic", "--database-url", source, "--config", recipe]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "must reference public.countries, which keeps the target's rows and has none" in err
    assert rows(source, RECORDS) == [("20240101000000",), ("20240202000000",)]


def test_anonymise_keeps_the_targets_record_of_its_own_migrations(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The pull request's branch ran a migration production has not: its record must stay."""
    source, target = databases(pg_server, "left_anonymise", APP, MIGRATED)
    execute(source, "INSERT INTO customers VALUES (1, 'ann@corp.example', 'DE', 4326)")
    pull_request = "INSERT INTO schema_migrations VALUES ('20240303000000');"
    execute(target, MIGRATED + pull_request + "INSERT INTO countries VALUES ('BE', 'Belgium')")
    rules = {"customers": {"id": "keep", "email": {"fake": "email"}, "country": "keep",
                           "srid": "keep"},
             "countries": "leave"}  # fmt: skip
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "tables": rules}))
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    args = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(path)]
    capsys.readouterr()
    assert main([*args, "--json"]) == 0  # no rules asked for the migration records
    summary = json.loads(capsys.readouterr().out)
    assert summary["left"] == [
        "public.SequelizeMeta",
        "public.countries",
        "public.schema_migrations",
        "public.spatial_refs",
    ]
    assert "public.schema_migrations" not in summary["rows"]
    assert rows(target, RECORDS) == [("20240101000000",), ("20240202000000",), ("20240303000000",)]
    assert rows(target, "SELECT count(*) FROM countries") == [(4,)]
    assert rows(target, "SELECT country FROM customers") == [("DE",)]
    # Production rows pointing at reference data the target lacks: named, with the way out.
    execute(source, "INSERT INTO countries VALUES ('IT', 'Italy');"
                    "INSERT INTO customers VALUES (2, 'bo@corp.example', 'IT', 4326)")  # fmt: skip
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "public.customers (country) references public.countries, which keeps the target's" in err
    assert "Key (country)=(IT) is not present" in err
    assert rows(target, "SELECT country FROM customers") == [("DE",)]  # the last copy, intact
    execute(source, "DELETE FROM customers WHERE id = 2")
    # An extension's table is the target's own: rules for it are a mistake, and said so.
    ruled = rules | {"spatial_refs": {"srid": "keep", "name": "keep"}}
    path.write_text(yaml.safe_dump({"version": 1, "tables": ruled}))
    assert main(args) == 2
    assert "public.spatial_refs belongs to extension citext" in capsys.readouterr().err
    # A copied key into a left table must stay as it is, or it finds no row there.
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "tables": rules
                | {"customers": rules["customers"] | {"country": {"mask": {"keep_first": 1}}}},
            }
        )
    )
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "public.customers (country) references public.countries, which keeps the target's" in err
    # A left table referencing a copied one cannot stay: the copy empties its parent.
    execute(source, "ALTER TABLE countries ADD owner bigint REFERENCES customers")
    path.write_text(yaml.safe_dump({"version": 1, "tables": rules}))
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "public.countries is left as the target has it, but references public.customers" in err


def test_inspect_writes_leave_for_migration_records(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _app(pg_server, "left_inspect")
    capsys.readouterr()
    assert main(["seed", "inspect", source, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["public.schema_migrations"]["left_by_default"] == "migration record"
    assert shown["public.spatial_refs"]["left_by_default"] == "extension citext's table"
    assert shown["public.countries"]["left_by_default"] is None
    with psycopg.connect(source) as conn:
        text = rules_text(introspect(conn), {})
    parsed = yaml.safe_load(text)["tables"]
    assert parsed["public.schema_migrations"] == "leave"
    assert parsed["public.SequelizeMeta"] == "leave"
    assert parsed["public.countries"] == {"code": "keep", "name": "keep"}
    assert parsed["public.spatial_refs"] == "leave"
    assert "extension citext's table" in text


# What Django's migrate writes itself, and looks up by value afterwards.
DJANGO = """
    CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label varchar(100) NOT NULL,
        model varchar(100) NOT NULL, UNIQUE (app_label, model));
    CREATE TABLE auth_permission (id serial PRIMARY KEY, name varchar(255) NOT NULL,
        content_type_id int NOT NULL REFERENCES django_content_type DEFERRABLE INITIALLY DEFERRED,
        codename varchar(100) NOT NULL, UNIQUE (content_type_id, codename));
    CREATE TABLE django_site (id serial PRIMARY KEY, domain varchar(100) NOT NULL UNIQUE,
        name varchar(50) NOT NULL);
    CREATE TABLE auth_user (id serial PRIMARY KEY, username varchar(150) NOT NULL UNIQUE);
    CREATE TABLE auth_user_user_permissions (id bigserial PRIMARY KEY,
        user_id int NOT NULL REFERENCES auth_user DEFERRABLE INITIALLY DEFERRED,
        permission_id int NOT NULL REFERENCES auth_permission DEFERRABLE INITIALLY DEFERRED,
        UNIQUE (user_id, permission_id));
    CREATE TABLE django_admin_log (id serial PRIMARY KEY, object_repr varchar(200) NOT NULL,
        content_type_id int REFERENCES django_content_type DEFERRABLE INITIALLY DEFERRED,
        user_id int NOT NULL REFERENCES auth_user DEFERRABLE INITIALLY DEFERRED);
    INSERT INTO django_content_type (app_label, model) VALUES ('auth', 'user'), ('shop', 'order');
    INSERT INTO auth_permission (name, content_type_id, codename)
        SELECT 'Can ' || a || ' ' || t.model, t.id, a || '_' || t.model
        FROM django_content_type t, unnest(ARRAY['add', 'change', 'view']) a;
    INSERT INTO django_site (domain, name) VALUES ('example.com', 'example.com');
"""
FRAMEWORK = """
    SELECT (SELECT string_agg(app_label || '.' || model, ',' ORDER BY id) FROM django_content_type),
           (SELECT string_agg(codename, ',' ORDER BY id) FROM auth_permission),
           (SELECT string_agg(id || ':' || domain, ',') FROM django_site)
"""


def test_a_synthetic_seed_leaves_the_records_django_writes_as_it_migrates(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invented content types, permissions and sites broke ``has_perm`` and ``SITE_ID = 1``."""
    url = pg_server.create_database("left_django")
    execute(url, DJANGO)
    before = rows(url, FRAMEWORK)
    assert main(["seed", "synthetic", "--database-url", url, "--rows", "40", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["left"]) >= {
        "public.django_content_type", "public.auth_permission", "public.django_site",
    }  # fmt: skip
    assert rows(url, FRAMEWORK) == before
    assert rows(url, "SELECT count(*) FROM auth_user_user_permissions") == [(40,)]
    dangling = """
        SELECT count(*) FROM django_admin_log l
        LEFT JOIN django_content_type t ON t.id = l.content_type_id
        WHERE l.content_type_id IS NOT NULL AND t.id IS NULL
    """
    assert rows(url, dangling) == [(0,)]
    # Named in the recipe, they are the recipe's to seed.
    recipe = _recipe(tmp_path, {"django_site": {"rows": 3}})
    assert main(["seed", "synthetic", "--database-url", url, "--config", recipe]) == 0
    assert rows(url, "SELECT count(*) FROM django_site") == [(3,)]


# An app's running state beside its data: Laravel's queue, sessions and cache, a
# pg-boss queue, and a job board's own jobs table (no queue columns: its data).
RUNNING = """
    CREATE SCHEMA pgboss;
    CREATE SCHEMA hangfire;
    CREATE SCHEMA board;
    CREATE TABLE hangfire.job (id bigserial PRIMARY KEY, invocationdata text NOT NULL);
    CREATE TABLE spring_session (primary_id char(36) PRIMARY KEY, principal_name varchar(100));
    CREATE TABLE qrtz_locks (sched_name varchar(120), lock_name varchar(40),
        PRIMARY KEY (sched_name, lock_name));
    CREATE TABLE users (id bigserial PRIMARY KEY, email varchar(255) NOT NULL UNIQUE);
    CREATE TABLE jobs (id bigserial PRIMARY KEY, queue varchar(255) NOT NULL,
        payload text NOT NULL, attempts smallint NOT NULL, available_at integer NOT NULL);
    CREATE TABLE sessions (id varchar(255) PRIMARY KEY, user_id bigint, payload text NOT NULL,
        last_activity integer NOT NULL);
    CREATE TABLE cache (key varchar(255) PRIMARY KEY, value text NOT NULL,
        expiration integer NOT NULL);
    CREATE TABLE pgboss.job (id uuid PRIMARY KEY, name text NOT NULL, data jsonb);
    CREATE TABLE board.jobs (id serial PRIMARY KEY, title text NOT NULL, company text NOT NULL);
"""
OWN_STATE = """
    INSERT INTO jobs (queue, payload, attempts, available_at)
        VALUES ('default', '{"job": "preview warm-up"}', 0, 1);
    INSERT INTO sessions VALUES ('preview-session', NULL, 'e30=', 1);
"""
STATE = "SELECT (SELECT string_agg(payload, ',') FROM jobs), (SELECT count(*) FROM sessions)"


def test_a_seed_leaves_the_apps_job_queue_sessions_and_cache(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copied, production's queued mails would go out from the preview; invented, its
    workers would choke on the payloads. A job board's jobs are data all the same."""
    source, target = databases(pg_server, "left_running", RUNNING, """
        INSERT INTO users (email) VALUES ('real@corp.example');
        INSERT INTO jobs (queue, payload, attempts, available_at)
            VALUES ('mail', '{"to": "real@corp.example"}', 0, 1);
        INSERT INTO sessions VALUES ('live-session-key', 1, 'eyJlbWFpbCI6InJlYWwifQ==', 1);
        INSERT INTO pgboss.job VALUES (gen_random_uuid(), 'welcome-mail', '{"to": 1}');
        INSERT INTO board.jobs (title, company) VALUES ('Welder', 'Acme');
    """)  # fmt: skip
    execute(target, OWN_STATE)
    assert main(["seed", "synthetic", "--database-url", target, "--rows", "5", "--json"]) == 0
    left = set(json.loads(capsys.readouterr().out)["left"])
    assert left >= {
        "public.jobs", "public.sessions", "public.cache", "pgboss.job", "hangfire.job",
        "public.spring_session", "public.qrtz_locks",
    }  # fmt: skip
    assert "board.jobs" not in left
    assert rows(target, STATE) == [('{"job": "preview warm-up"}', 1)]
    assert rows(target, "SELECT count(*) FROM board.jobs") == [(5,)]
    # The copy's rules need not name them; production's queue never reaches the preview.
    rules = rules_for({
        "users": {"id": "keep", "email": {"fake": "email"}},
        "board.jobs": {"id": "keep", "title": "keep", "company": "keep"},
    })  # fmt: skip
    report = copy_between(source, target, rules)
    assert report.leak_hits == {}
    assert rows(target, STATE) == [('{"job": "preview warm-up"}', 1)]
    assert rows(target, "SELECT count(*) FROM pgboss.job") == [(0,)]
    assert rows(target, "SELECT title FROM board.jobs") == [("Welder",)]
