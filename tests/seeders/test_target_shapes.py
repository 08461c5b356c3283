"""Copies into narrower targets, and keys referenced by columns of other types."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from envs.cli.main import main
from envs.core.errors import ConfigError
from envs.environments.seeding import seed_anonymised
from seeders.anonymise.anonymiser import TargetTooNarrow
from seeders.anonymise.rules import Rules, parse_rules
from seeders.anonymise.shapes import Shape, overflows, problems, shapes
from seeders.schema.graph import families
from seeders.schema.introspect import introspect
from seeders.schema.model import Category, Column, ForeignKey, Schema, Table
from tests.pg_server import PgServer
from tests.seeders.connections import copy_between, databases, rows, rules_for


def test_keys_join_whatever_the_types_of_the_columns_referencing_them(
    pg_server: PgServer,
) -> None:
    """An integer column referencing a bigint key, text referencing varchar(10), and so on.

    Each rule shapes its output by the column (a tag when unique, a width,
    an integer range), so before key families every one of these copies
    failed on its foreign keys.
    """
    ddl = """
        CREATE TABLE accounts (id bigint PRIMARY KEY);
        CREATE TABLE legacy (id int PRIMARY KEY, account_id int REFERENCES accounts);
        CREATE TABLE tiny (id smallint PRIMARY KEY);
        CREATE TABLE wide (id int PRIMARY KEY, tiny_id bigint REFERENCES tiny);
        CREATE TABLE codes (code varchar(10) PRIMARY KEY);
        CREATE TABLE uses (id int PRIMARY KEY, code text REFERENCES codes);
        CREATE TABLE people (email text PRIMARY KEY);
        CREATE TABLE notes (id int PRIMARY KEY, author text REFERENCES people);
        CREATE TABLE handles (nick text PRIMARY KEY);
        CREATE TABLE posts (id int PRIMARY KEY, nick varchar(12) REFERENCES handles);
    """
    fill = """
        INSERT INTO accounts SELECT g FROM generate_series(1, 300) g;
        INSERT INTO legacy SELECT g, 1 + g % 300 FROM generate_series(1, 500) g;
        INSERT INTO tiny SELECT g FROM generate_series(-200, 200) g;
        INSERT INTO wide SELECT g, g % 200 FROM generate_series(1, 500) g;
        INSERT INTO codes SELECT 'C-' || g FROM generate_series(1, 300) g;
        INSERT INTO uses SELECT g, 'C-' || (1 + g % 300) FROM generate_series(1, 500) g;
        INSERT INTO people SELECT 'person' || g || '@corp.example' FROM generate_series(1, 300) g;
        INSERT INTO notes SELECT g, 'person' || (1 + g % 300) || '@corp.example'
            FROM generate_series(1, 500) g;
        INSERT INTO handles SELECT 'nick' || g FROM generate_series(1, 300) g;
        INSERT INTO posts SELECT g, 'nick' || (1 + g % 300) FROM generate_series(1, 500) g;
    """
    source, target = databases(pg_server, "families", ddl, fill)
    child = {"id": "keep"}
    rules = rules_for(
        {
            "accounts": {"id": "hash"}, "legacy": child | {"account_id": "hash"},
            "tiny": {"id": "hash"}, "wide": child | {"tiny_id": "hash"},
            "codes": {"code": "hash"}, "uses": child | {"code": "hash"},
            "people": {"email": {"fake": "email"}},
            "notes": child | {"author": {"fake": "email"}},
            "handles": {"nick": {"mask": {"keep_first": 2}}},
            "posts": child | {"nick": {"mask": {"keep_first": 2}}},
        }
    )  # fmt: skip
    report = copy_between(source, target, rules)
    assert report.total_rows == 300 + 500 + 401 + 500 + 300 + 500 + 300 + 500 + 300 + 500
    joins = {
        "legacy": "legacy c JOIN accounts p ON p.id = c.account_id",
        "wide": "wide c JOIN tiny p ON p.id = c.tiny_id",
        "uses": "uses c JOIN codes p ON p.code = c.code",
        "notes": "notes c JOIN people p ON p.email = c.author",
        "posts": "posts c JOIN handles p ON p.nick = c.nick",
    }
    for name, joined in joins.items():
        assert rows(target, f"SELECT count(*) FROM {joined}") == [(500,)], name
    # Every column of a family takes its narrowest limits: the smallint key's
    # pseudonyms (shared by the bigint column) fit smallint, the text column's
    # hashes are as wide as varchar(10) allows, the masked keys fit varchar(12).
    assert rows(target, "SELECT min(tiny_id) >= -32768 AND max(tiny_id) <= 32767 FROM wide") == [
        (True,)
    ]
    assert rows(target, "SELECT max(length(code)) FROM uses") == [(10,)]
    assert rows(target, "SELECT max(length(nick)) FROM handles") == [(12,)]
    assert rows(target, "SELECT count(*) FROM accounts WHERE id BETWEEN 1 AND 300")[0][0] < 5
    assert rows(target, "SELECT count(*) FROM people WHERE email LIKE '%@corp.example'") == [(0,)]


def test_values_stay_distinct_wherever_a_unique_index_reads_them(pg_server: PgServer) -> None:
    """Composite keys, ``lower(email)`` indexes, partial (soft-delete) ones: tagged like unique.

    A fake drawn from a pool of a thousand values, or a mask, repeats within
    a tenant; before, every one of these copies failed on its index rebuild.
    """
    ddl = """
        CREATE TABLE users (
            id int PRIMARY KEY, org_id int NOT NULL, email text NOT NULL, handle text,
            nick text, deleted_at timestamptz, UNIQUE (org_id, email)
        );
        CREATE UNIQUE INDEX ON users (lower(handle)) WHERE deleted_at IS NULL;
        CREATE TABLE members (org_id int, name text, PRIMARY KEY (org_id, name));
    """
    fill = """
        INSERT INTO users SELECT g, g % 3, 'u' || g || '@corp.example', 'Handle' || g,
            'nick' || g, NULL FROM generate_series(1, 3000) g;
        INSERT INTO members SELECT g % 3, 'name' || g FROM generate_series(1, 3000) g;
    """
    source, target = databases(pg_server, "unique_members", ddl, fill)
    with psycopg.connect(source) as conn:
        users = introspect(conn).table("public.users")
    assert users.unique_members == ("deleted_at", "email", "handle", "id", "org_id")
    rules = rules_for(
        {
            "users": {
                "id": "keep", "org_id": "keep", "email": {"fake": "email"},
                "handle": {"fake": "user_name"}, "nick": {"fake": "user_name"},
                "deleted_at": "keep",
            },
            "members": {"org_id": "keep", "name": {"mask": {"keep_first": 1}}},
        }
    )  # fmt: skip
    assert copy_between(source, target, rules).total_rows == 6000
    assert rows(target, "SELECT count(DISTINCT lower(handle)) FROM users") == [(3000,)]
    # A column no unique index reads keeps its plain pool values (no tag).
    assert rows(target, "SELECT count(DISTINCT nick) < 3000 FROM users") == [(True,)]


def test_transformed_values_fit_a_target_the_migration_narrowed(pg_server: PgServer) -> None:
    """Shorter text, fewer digits, a smaller integer, a new unique index: outputs fit them."""
    ddl = """
        CREATE TABLE people (
            id int PRIMARY KEY, email varchar(255) NOT NULL, name text, token text,
            amount numeric(12, 2), visits bigint, nick text, motto text
        );
    """
    fill = """
        INSERT INTO people SELECT g, 'somebody.with.a.long.address' || g || '@corp.example',
            'Person Number ' || g, md5(g::text), 9990 + g % 10, 2147483000 + g, 'N' || g,
            'Carpe diem, quam minimum credula postero'
        FROM generate_series(1, 400) g;
    """
    source, target = databases(pg_server, "narrowed", ddl, fill)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("""
            ALTER TABLE people ALTER email TYPE varchar(40), ALTER name TYPE varchar(6),
                ALTER token TYPE varchar(12), ALTER amount TYPE numeric(6, 2),
                ALTER visits TYPE int, ALTER motto TYPE varchar(20);
            CREATE UNIQUE INDEX ON people (email);
            CREATE UNIQUE INDEX ON people (nick);
        """)
    rules = rules_for(
        {
            "people": {
                "id": "keep",
                "email": {"fake": "email"},
                "name": {"mask": {"keep_first": 1}},
                "token": "hash",
                "amount": {"noise": 0.5},
                "visits": {"noise": 0.01},
                "nick": {"fake": "first_name"},
                "motto": {"template": "{name} says {nick}, over and over again"},
            }
        }
    )
    assert copy_between(source, target, rules).total_rows == 400
    [(email, name, token, amount, visits, nicks, motto)] = rows(
        target,
        "SELECT max(length(email)), max(length(name)), min(length(token)), max(amount),"
        " min(visits), count(DISTINCT nick), max(length(motto)) FROM people",
    )
    assert email <= 40
    assert nicks == 400, "unique in the target only: every faked nick is tagged"
    assert (name, token, motto) == (6, 12, 20)
    # A noised 9999 can reach 14998 (+50 %): it is clamped to numeric(6, 2).
    assert amount == Decimal("9999.99")
    assert visits > 2147483000 * 0.98, "noised, not clamped to nothing"
    assert rows(target, "SELECT count(*) FROM people WHERE nick LIKE '%-%'") == [(400,)]


def test_kept_values_the_target_cannot_take_are_counted_and_refused_before_writing(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ddl = """
        CREATE TYPE plan AS ENUM ('free', 'pro', 'legacy');
        CREATE TABLE people (
            id int PRIMARY KEY, name text, code varchar(30), padded text, big bigint,
            amount numeric, plan plan, fine varchar(50), region text
        );
    """
    fill = """
        INSERT INTO people SELECT g, repeat('x', 3 + g % 10), 'C' || g, 'ab   ',
            CASE WHEN g % 100 = 0 THEN 3000000000 ELSE g END,
            CASE WHEN g <= 7 THEN 123456.5 ELSE 99.994 END,
            (CASE WHEN g % 50 = 0 THEN 'legacy' ELSE 'free' END)::plan, 'short', 'eu'
        FROM generate_series(1, 400) g;
    """
    source, target = databases(pg_server, "too_narrow", ddl, fill)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("""
            ALTER TABLE people ALTER name TYPE varchar(10), ALTER padded TYPE varchar(2),
                ALTER big TYPE int, ALTER amount TYPE numeric(5, 2), ALTER fine TYPE varchar(5),
                ALTER code TYPE varchar(12);
            ALTER TABLE people DROP COLUMN plan;
            DROP TYPE plan;
            CREATE TYPE plan AS ENUM ('free', 'pro');
            ALTER TABLE people ADD COLUMN plan plan;
            INSERT INTO people (id) VALUES (-1);
        """)
    names = ["id", "name", "code", "padded", "big", "amount", "plan", "fine", "region"]
    tables = {"people": dict.fromkeys(names, "keep")}
    with pytest.raises(TargetTooNarrow) as info:
        copy_between(source, target, rules_for(tables))
    message = str(info.value)
    # name: lengths 3..12, so 3..12 > 10 for g % 10 in (8, 9): 80 rows.
    assert "public.people.name: 80 rows longer than 10 characters" in message
    assert "target character varying(10), source text" in message
    assert "public.people.big: 4 rows outside integer's range" in message
    assert "public.people.amount: 7 rows with more than 3 digits before the point" in message
    assert "public.people.plan: 8 rows holding labels the target's public.plan lacks" in message
    assert "nothing was written" in message
    # What may reach the PR names the columns and the fix, and counts nothing.
    public = info.value.public
    assert "public.people.name: rows longer than 10 characters" in public
    assert "public.people.plan: rows holding labels the target's public.plan lacks" in public
    assert not re.search(r"\d+ rows?", public), public
    assert "The migration would fail on the same rows in production." in message
    # Values that fit are no complaint: trailing spaces are cut, as SQL cuts
    # them; 99.994 rounds to 99.99; a short value in a narrower column fits.
    for fits in ("padded", "fine", "code", "region", "id"):
        assert f"public.people.{fits}:" not in message
    assert rows(target, "SELECT id FROM people") == [(-1,)], "the target is as it was"

    # A subset that leaves the rows out leaves the complaints out; then the copy runs.
    subset = "id % 10 < 8 AND id % 100 <> 0 AND id > 7 AND id % 50 <> 0"
    fitting = parse_rules({"version": 1, "tables": tables, "subset": {"people": subset}})
    assert copy_between(source, target, fitting).total_rows == 400 - 80 - 4 - 7 - 4
    assert rows(target, "SELECT DISTINCT padded FROM people") == [("ab",)]

    # The command line says the same, as a configuration error.
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"version": 1, "tables": tables}))
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    args = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(rules)]
    assert main(args) == 2
    assert "public.people.name: 80 rows longer than 10 characters" in capsys.readouterr().err


def test_a_key_family_refuses_values_its_narrowest_column_cannot_hold(
    pg_server: PgServer,
) -> None:
    """A bigint key, referenced by an integer column, holding a key beyond integer's range."""
    ddl = """
        CREATE TABLE accounts (id bigint PRIMARY KEY);
        CREATE TABLE legacy (id int PRIMARY KEY, account_id int REFERENCES accounts);
    """
    fill = """
        INSERT INTO accounts VALUES (1), (2), (3000000000), (-3000000000);
        INSERT INTO legacy VALUES (1, 1), (2, 2);
    """
    source, target = databases(pg_server, "family_range", ddl, fill)
    rules = rules_for({"accounts": {"id": "hash"}, "legacy": {"id": "keep", "account_id": "hash"}})
    with pytest.raises(TargetTooNarrow) as info:
        copy_between(source, target, rules)
    message = str(info.value)
    assert "public.accounts.id: 2 rows outside integer's range" in message
    assert "public.legacy.account_id (integer) is joined to it by a foreign key" in message
    assert "widen that column to bigint" in message
    assert "production" not in message, "the source's own schema, not a migration"


def test_a_pseudonymised_key_the_migration_narrowed_is_refused_outside_its_range(
    pg_server: PgServer,
) -> None:
    """A bigint key hashed into the integer key of the target: the pseudonym must fit."""
    source, target = databases(
        pg_server, "hash_narrowed", "CREATE TABLE t (id bigint PRIMARY KEY)",
        "INSERT INTO t VALUES (1), (2), (3000000000)",
    )  # fmt: skip
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("ALTER TABLE t ALTER id TYPE int")
    with pytest.raises(TargetTooNarrow) as info:
        copy_between(source, target, rules_for({"t": {"id": "hash"}}))
    message = str(info.value)
    assert "public.t.id: 1 row outside integer's range (target integer, source bigint)" in message
    assert "The migration would fail on the same rows in production." in message
    assert "foreign key" not in message, "no other column is involved"


def _table(name: str, *columns: Column, fks: tuple[ForeignKey, ...] = (), pk: str = "") -> Table:
    return Table("public", name, columns, primary_key=(pk,) if pk else (), foreign_keys=fks)


def _text(name: str, max_length: int | None = None) -> Column:
    return Column(name, "text", Category.TEXT, True, max_length=max_length)


def test_key_families_are_joined_transitively_and_take_their_narrowest_limits() -> None:
    a = _table("a", _text("k", 30), pk="k")
    b = _table(
        "b", _text("k"), _text("x"), fks=(ForeignKey("b_k", ("k",), "public.a", ("k",)),), pk="k"
    )
    c = _table("c", _text("k", 12), fks=(ForeignKey("c_k", ("k",), "public.b", ("k",)),))
    schema = Schema((a, b, c))
    family = (("public.a", "k"), ("public.b", "k"), ("public.c", "k"))
    assert families(schema.tables)[("public.c", "k")] == family
    shaped = shapes(schema, schema)
    for key in family:
        assert shaped[key] == Shape(unique=True, max_length=12)
    assert shaped[("public.b", "x")] == Shape()
    # The target narrows what the source does not.
    narrower = Schema((a, Table("public", "b", (_text("k"), _text("x", 4)), ("k",)), c))
    assert shapes(schema, narrower)[("public.b", "x")] == Shape(max_length=4)


def test_rules_the_narrower_target_cannot_take_are_named_without_reading_data() -> None:
    source = Schema((_table("t", _text("id"), _text("code"), _text("label"), pk="id"),))
    target = Schema(
        (
            Table(
                "public", "t", (_text("id"), _text("code", 6), _text("label", 3)), ("id",),
                unique=(("label",),),
            ),
        )
    )  # fmt: skip
    label = {"constant": "n/a!"}
    rules = parse_rules(
        {"version": 1, "tables": {"t": {"id": "keep", "code": "hash", "label": label}}}
    )
    found = problems(source, rules, shapes(source, target))
    assert len(found) == 3
    assert "public.t.code: rule 'hash' needs room for 8 hex digits" in found[0]
    assert "public.t.label: rule 'constant' on a column the target makes unique" in found[1]
    assert "public.t.label: the constant 'n/a!' is longer than the 3 characters" in found[2]


def test_fakes_are_drawn_from_what_the_target_columns_checks_accept(pg_server: PgServer) -> None:
    """Before, Faker's "(500)507-0587x5237" broke the E.164 check and the copy was refused."""
    ddl = r"""
        CREATE TABLE people (id int PRIMARY KEY,
            phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
            city text NOT NULL CHECK (city = upper(city)),
            nick varchar(8) CHECK (nick ~ '^[a-z]{3,8}$'),
            ref text UNIQUE CHECK (ref ~ '^R[0-9]+$'));
        CREATE TABLE calls (id int PRIMARY KEY, person int REFERENCES people,
            phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'));
    """
    fill = r"""
        INSERT INTO people SELECT g, '+4930' || (1000000 + g), 'BERLIN ' || g, 'nick', 'R' || g
            FROM generate_series(1, 400) g;
        INSERT INTO calls SELECT g, g, '+4930' || (1000000 + g) FROM generate_series(1, 400) g;
    """
    source, target = databases(pg_server, "fitted_fakes", ddl, fill)
    fake = {"fake": "phone_number"}

    def rules_with(ref: Any) -> Rules:
        return rules_for(
            {
                "people": {"id": "keep", "phone": fake, "city": {"fake": "city"},
                           "nick": {"fake": "first_name"}, "ref": ref},
                "calls": {"id": "keep", "person": "keep", "phone": fake},
            }
        )  # fmt: skip

    # A unique column's fakes, tagged to stay distinct, would fail its pattern: they are
    # built from the pattern instead (before, the check refused them and the copy failed).
    copy_between(source, target, rules_with({"fake": "word"}))
    refs = [r for (r,) in rows(target, "SELECT ref FROM people")]
    assert len(set(refs)) == 400
    assert all(re.fullmatch(r"R[0-9]+", r) for r in refs)
    assert not set(refs) & {f"R{g}" for g in range(1, 401)}  # none of the originals
    rules = rules_with("keep")
    report = copy_between(source, target, rules)
    assert report.leak_hits == {}
    found = rows(target, "SELECT phone, city, nick FROM people ORDER BY id")
    assert len({p for p, _, _ in found}) > 200  # varied, not one value that passes
    assert len({c for _, c, _ in found}) > 100
    assert all(c == c.upper() for _, c, _ in found)  # Faker's cities, upper-cased
    # The same phone gets the same fake in either table and in every run.
    joined = rows(target, "SELECT count(*) FROM calls c JOIN people p ON p.id = c.person"
                          " WHERE c.phone = p.phone")  # fmt: skip
    assert joined == [(400,)]
    copy_between(source, target, rules)
    assert rows(target, "SELECT phone, city, nick FROM people ORDER BY id") == found


def test_a_unique_fake_under_a_pattern_check_is_built_from_the_pattern(
    pg_server: PgServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before, a unique E.164 column's tagged fakes broke its check and the copy was refused."""
    ddl = r"""
        CREATE TABLE users (id int PRIMARY KEY,
            phone text NOT NULL UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'));
        CREATE TABLE devices (id int PRIMARY KEY,
            phone text UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
            code text UNIQUE CHECK (code ~ '^[A-Z]{2}$'));
    """
    fill = r"""
        INSERT INTO users SELECT g, '+4930' || (1000000 + g) FROM generate_series(1, 3000) g;
        INSERT INTO devices SELECT g, '+4930' || (1000000 + g), NULL
            FROM generate_series(1, 3000, 2) g;
    """
    source, target = databases(pg_server, "patterned_fakes", ddl, fill)
    fake = {"fake": "phone_number"}
    rules = rules_for(
        {
            "users": {"id": "keep", "phone": fake},
            "devices": {"id": "keep", "phone": fake, "code": "null"},
        }
    )
    report = copy_between(source, target, rules)
    assert report.leak_hits == {}
    phones = [p for (p,) in rows(target, "SELECT phone FROM users")]
    assert len(set(phones)) == 3000
    assert all(re.fullmatch(r"\+[1-9][0-9]{6,14}", p) for p in phones)
    # One phone, one pseudonym, whichever table holds it (the same pattern, the same MAC).
    joined = "SELECT count(*) FROM devices d JOIN users u ON u.id = d.id AND u.phone = d.phone"
    assert rows(target, joined) == [(1500,)]
    # A pattern too narrow for the table's rows to stay distinct is still refused.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(
            "UPDATE devices SET code = chr(65 + id / 2 % 26) || chr(65 + id / 52) WHERE id < 1352"
        )
    narrow = rules_for(
        {
            "users": {"id": "keep", "phone": fake},
            "devices": {"id": "keep", "phone": fake, "code": {"fake": "word"}},
        }
    )
    with pytest.raises(psycopg.errors.CheckViolation, match="devices_code_check"):
        copy_between(source, target, narrow)
    written = tmp_path / "narrow.yaml"
    written.write_text(yaml.safe_dump({"version": 1, "tables": {
        "public.users": {"id": "keep", "phone": fake},
        "public.devices": {"id": "keep", "phone": fake, "code": {"fake": "word"}},
    }}))  # fmt: skip
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    argv = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(written)]
    assert main(argv) == 2  # a config error: the rules are the user's to change
    said = " ".join(capsys.readouterr().err.split())
    assert "{template: '+1555{id}'}" in said


def test_a_target_check_is_never_evaluated_on_the_source(pg_server: PgServer) -> None:
    """The attack: a migration's CHECK that reads the source through query_to_xml.

    On the source, ``people.ssn`` holds the originals; the check's query finds
    them there and is false, so counting it on the source refused the copy with
    a count that went onto the PR, a bit of a hashed column per run. On the
    target the query reads the pseudonyms, which hold no dash, so the check
    passes and the copy goes through: the check was the target's to evaluate.
    """
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, ssn text);
        CREATE TABLE orgs (id int PRIMARY KEY, seats int);
    """
    fill = """
        INSERT INTO people SELECT g, '123-45-' || lpad(g::text, 4, '0')
            FROM generate_series(1, 50) g;
        INSERT INTO orgs SELECT g, g FROM generate_series(1, 20) g;
    """
    source, target = databases(pg_server, "hostile_check", ddl, fill)
    probe = "SELECT 1 FROM public.people WHERE ssn LIKE '123-45-%'"
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "ALTER TABLE orgs ADD CONSTRAINT probe CHECK"
                " (seats > 0 AND strpos(query_to_xml({}, false, false, '')::text, '<row>') = 0)"
            ).format(sql.Literal(probe))
        )
    rules = rules_for(
        {"people": {"id": "keep", "ssn": "hash"}, "orgs": {"id": "keep", "seats": "keep"}}
    )
    assert copy_between(source, target, rules).total_rows == 70
    assert rows(target, "SELECT count(*) FROM people WHERE ssn LIKE '123-45-%'") == [(0,)]


def test_kept_rows_a_check_the_migration_added_refuses_are_named_with_no_count(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """The target refuses the rows as they load; the PR is told which check and what to do."""
    ddl = """
        CREATE TABLE orgs (id int PRIMARY KEY, seats int, starts date, ends date, tag text);
    """
    fill = """
        INSERT INTO orgs SELECT g, g % 20, date '2024-01-01' + g,
            date '2024-01-01' + g + CASE WHEN g % 40 = 0 THEN -1 ELSE 1 END, 't' || g
            FROM generate_series(1, 400) g;
    """
    source, target = databases(pg_server, "new_checks", ddl, fill)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("ALTER TABLE orgs ADD CHECK (seats > 0)")
    tables = {"orgs": dict.fromkeys(["id", "seats", "starts", "ends", "tag"], "keep")}
    written = tmp_path / "rules.yaml"
    written.write_text(yaml.safe_dump({"version": 1, "tables": tables}))
    with pytest.raises(ConfigError) as info:
        seed_anonymised(source, target, written, "0123456789abcdef0123")
    public = info.value.public
    assert "kept rows break the target's check orgs_seats_check (CHECK ((seats > 0)))" in public
    assert "those rows need fixing in production before the migration runs" in public
    assert "give seats a rule whose values pass" in public
    assert "Failing row" not in public
    assert not re.search(r"\d+ rows?", public), public
    assert "Failing row contains" in str(info.value), "the log keeps the server's words"
    assert rows(target, "SELECT count(*) FROM orgs") == [(0,)]

    # NOT VALID spares the rows a table has, not the rows a copy writes.
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("""
            ALTER TABLE orgs DROP CONSTRAINT orgs_seats_check;
            ALTER TABLE orgs ADD CONSTRAINT in_order CHECK (starts < ends) NOT VALID;
        """)
    with pytest.raises(ConfigError) as info:
        seed_anonymised(source, target, written, "0123456789abcdef0123")
    assert "a copy writes every row anew" in info.value.public
    assert "give starts or ends a rule whose values pass" in info.value.public
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("ALTER TABLE orgs DROP CONSTRAINT in_order")
    rules = rules_for(tables)
    assert copy_between(source, target, rules).total_rows == 400
    # The source's own checks hold every source row, and the target's are never
    # counted on the source: no scan either way.
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        src_schema, dst_schema = introspect(src), introspect(dst)
    assert overflows(src_schema, src_schema, rules, shapes(src_schema, src_schema)) == []
    assert overflows(src_schema, dst_schema, rules, {}) == []


def test_a_fake_that_would_repeat_the_original_takes_the_pools_next_value(
    pg_server: PgServer,
) -> None:
    """In a small space a fake often picks the row's own value; a tag then broke the check."""
    providers = ["word", "city", "first_name", "last_name", "company", "job"]
    columns = ", ".join(f"{p} text CHECK ({p} ~ '^[0-9]$')" for p in providers)
    ddl = f"CREATE TABLE pins (id int PRIMARY KEY, {columns})"
    digits = ", ".join(f"((g + {k}) % 10)::text" for k in range(len(providers)))
    fill = f"INSERT INTO pins SELECT g, {digits} FROM generate_series(1, 2000) g"
    source, target = databases(pg_server, "fake_next", ddl, fill)
    faked = {p: {"fake": p} for p in providers}
    report = copy_between(source, target, rules_for({"pins": {"id": "keep", **faked}}))
    assert report.total_rows == 2000
    query = f"SELECT id, {', '.join(providers)} FROM pins ORDER BY id"
    with psycopg.connect(source) as src:
        originals = src.execute(query).fetchall()
    copied = rows(target, query)
    for before, after in zip(originals, copied, strict=True):
        assert all(a != b for a, b in zip(before[1:], after[1:], strict=True))  # never its own
    assert len({row[1] for row in copied}) > 5
