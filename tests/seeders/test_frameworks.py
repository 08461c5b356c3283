"""Starter schemas of web frameworks, Auth.js and Supabase, through seed, inspect, anonymise.

Each is created as its framework's migrations create it (tests/fixtures/sql/frameworks),
seeded with synthetic data, inspected for a starting rules file, and copied with those
rules as written: every step must succeed, the copy's leak check find nothing, and what
the framework itself keeps in its database (migration records, content types, queues)
stay as the target had it. Each of these once failed: a join table's repeated pair, a
false leak between columns fed by one pool, a queue copied from production.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml

from envs.cli.main import main
from tests.pg_server import PgServer
from tests.seeders.test_cli_seed import database_of

FRAMEWORKS = Path(__file__).resolve().parents[1] / "fixtures" / "sql" / "frameworks"

# Per framework: a query on the target after the copy, and what it must return.
KEPT = {
    "aspnet": (
        'SELECT (SELECT count(*) FROM "__EFMigrationsHistory"),'
        ' (SELECT count(*) FROM "AspNetUserTokens"),'
        ' (SELECT count(DISTINCT ("UserId", "RoleId")) FROM "AspNetUserRoles")',
        (1, 0, 300),
    ),
    "authjs": (
        'SELECT (SELECT count(*) FROM "_prisma_migrations"), (SELECT count(*) FROM "Session"),'
        ' (SELECT count(*) FROM "VerificationToken"),'
        # The user's id at the provider, pseudonymised:
        ' (SELECT count(*) FROM "Account" WHERE "providerAccountId" ~ \'^[0-9a-f]{16}$\')',
        (1, 0, 0, 300),
    ),
    "django": (
        "SELECT (SELECT count(*) FROM django_migrations), (SELECT count(*) FROM django_site),"
        " (SELECT count(DISTINCT (user_id, group_id)) = count(*) FROM auth_user_groups)",
        (1, 1, True),
    ),
    "rails": (
        "SELECT (SELECT string_agg(version, ',') FROM schema_migrations),"
        " (SELECT value FROM ar_internal_metadata WHERE key = 'environment')",
        ("20240101000000", "production"),
    ),
    "doorkeeper": (
        "SELECT (SELECT count(*) FROM schema_migrations),"
        " (SELECT count(*) FROM oauth_access_tokens), (SELECT count(*) FROM oauth_access_grants),"
        " (SELECT count(DISTINCT uid) FROM oauth_applications)",
        (2, 0, 0, 300),
    ),
    "laravel": (
        "SELECT (SELECT count(*) FROM migrations), (SELECT count(*) FROM jobs),"
        " (SELECT count(*) FROM users WHERE email LIKE '%@example.%')",
        (1, 0, 300),
    ),
    "phoenix": (
        "SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM users_tokens),"
        " (SELECT count(*) FROM oban_jobs), (SELECT count(*) FROM posts)",
        (1, 0, 0, 300),
    ),
    "prisma": (
        'SELECT (SELECT count(*) FROM "_prisma_migrations"),'
        ' (SELECT count(DISTINCT ("A", "B")) FROM "_CategoryToPost")',
        (1, 300),
    ),
    "spring": (
        "SELECT (SELECT count(*) FROM flyway_schema_history),"
        " (SELECT count(*) FROM spring_session),"
        " (SELECT count(*) FROM authorities a JOIN users u USING (username)),"
        " (SELECT count(*) FROM customer_aud)",
        (1, 0, 300, 300),
    ),
    "supabase": (
        "SELECT (SELECT count(*) FROM auth.schema_migrations),"
        " (SELECT count(*) FROM storage.migrations), (SELECT count(*) FROM auth.refresh_tokens),"
        " (SELECT count(*) FILTER (WHERE confirmation_token = '') FROM auth.users),"
        " (SELECT count(DISTINCT confirmation_token) FROM auth.users),"
        " (SELECT count(*) FROM public.profiles)",
        (1, 1, 0, 250, 51, 300),
    ),
}

# What production holds that seeded data does not, written into the source after the seed:
# GoTrue's '' for every token not pending (unique where not empty), and the user's e-mail
# and name inside the JSON documents a sign-in writes.
PRODUCTION = {
    "supabase": """
        UPDATE auth.users SET confirmation_token = '', recovery_token = '',
            email_change_token_new = '', email_change = '', email_change_token_current = '',
            phone_change_token = '', reauthentication_token = ''
        WHERE id IN (SELECT id FROM auth.users ORDER BY id LIMIT 250);
        UPDATE auth.users SET raw_user_meta_data = jsonb_build_object('email', email,
            'full_name', 'Ada ' || left(md5(id::text), 8), 'sub', id::text);
        UPDATE auth.identities i SET identity_data = jsonb_build_object('sub', u.id::text,
            'email', u.email, 'email_verified', true) FROM auth.users u WHERE u.id = i.user_id;
    """,
}


@pytest.mark.parametrize("framework", sorted(KEPT))
def test_a_frameworks_schema_seeds_inspects_and_anonymises_cleanly(
    framework: str, pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ddl = (FRAMEWORKS / f"{framework}.sql").read_text()
    source = database_of(pg_server, f"framework_{framework}_source", ddl)
    target = database_of(pg_server, f"framework_{framework}_target", ddl)
    argv = ["seed", "synthetic", "--database-url", source, "--rows", "300", "--json"]
    assert main(argv) == 0, capsys.readouterr().err
    seeded = json.loads(capsys.readouterr().out)
    assert seeded["total_rows"] > 0
    if framework in PRODUCTION:
        with psycopg.connect(source) as conn:
            conn.execute(PRODUCTION[framework].encode())
    rules = tmp_path / "rules.yaml"
    assert main(["seed", "inspect", source, "--rules-out", str(rules)]) == 0
    assert yaml.safe_load(rules.read_text())["version"] == 1
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    capsys.readouterr()
    argv = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(rules)]
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    copied = json.loads(capsys.readouterr().out)
    assert copied["leak_check"]["hits"] == {}
    for name, rows in seeded["rows"].items():  # every seeded row copied, none lost
        if name not in (*copied["left"], *copied["skipped"]):
            assert copied["rows"][name] == rows, name
    query, expected = KEPT[framework]
    with psycopg.connect(target) as conn:
        assert conn.execute(query.encode()).fetchone() == expected
