"""`previewctl seed synthetic|inspect` on a real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from envs.cli.main import main
from envs.cli.seed import rules_text
from seeders.anonymise.pii import PiiGuess, credential_tables, guess, rule_for
from seeders.anonymise.rules import Rule, parse_rules
from seeders.schema.model import Category, Column, ForeignKey, Schema, Table
from tests.pg_server import PgServer


def database_of(pg_server: PgServer, name: str, ddl: str) -> str:
    """A fresh database holding ``ddl``'s tables (and rows)."""
    url = pg_server.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ddl.encode())
    return url


def test_synthetic_with_a_recipe(
    shop_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "seed: 3\nrows: 200\ntables:\n  warehouses: {rows: 4}\n"
        "  customers:\n    rows: 300\n    columns:\n      country: {values: [DE, FR]}\n"
    )
    code = main(
        ["seed", "synthetic", "--database-url", shop_url, "--config", str(recipe), "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"]["public.customers"] == 300
    assert summary["rows"]["public.warehouses"] == 4
    assert summary["seed"] == 3
    with psycopg.connect(shop_url) as conn:
        countries = {r[0] for r in conn.execute("SELECT DISTINCT country FROM customers")}
    assert countries == {"DE", "FR"}


def test_rows_flag_overrides_the_recipe(shop_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "synthetic", "--database-url", shop_url, "--rows", "25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["public.orders"] == 25


def test_progress_shows_each_tables_rows_and_rate_even_when_they_come_in_one_chunk(
    shop_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """25 rows a table are one COPY chunk: the rate is the table's own, never 0/s."""
    assert main(["seed", "synthetic", "--database-url", shop_url, "--rows", "25"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("public.")]
    assert {line.split()[0] for line in lines} == {
        "public.customers", "public.warehouses", "public.products", "public.stock",
        "public.orders", "public.order_lines", "public.shipments",
    }  # fmt: skip
    for line in lines:
        rows, rate = line.split()[-3:-1]
        assert rows == "25/25"
        assert rate.endswith("/s"), line
        assert int(rate.removesuffix("/s").replace(",", "")) > 0, line


def test_unknown_table_in_recipe_is_a_config_error_before_writing(
    shop: psycopg.Connection[Any], shop_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "tables:\n  custmers: {rows: 5}\n  orders:\n    columns:\n      nope: {values: [x]}\n"
    )
    assert main(["seed", "synthetic", "--database-url", shop_url, "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "tables.custmers: no such table" in err
    assert "tables.orders.columns.nope: no such column" in err
    row = shop.execute("SELECT count(*) FROM customers").fetchone()
    assert row == (0,)


def test_bad_provider_is_a_config_error(
    shop_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "tables:\n  customers:\n    columns:\n      email: {provider: not_a_provider}\n"
    )
    assert main(["seed", "synthetic", "--database-url", shop_url, "--config", str(recipe)]) == 2
    assert "not a Faker provider" in capsys.readouterr().err


def test_a_partitioned_schema_is_seeded_and_an_unfillable_one_refused_with_the_fix(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = database_of(pg_server, "cli_partitions", """
        CREATE TABLE visits (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE visits_2024 PARTITION OF visits
            FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    """)  # fmt: skip
    assert main(["seed", "synthetic", "--database-url", url, "--rows", "500"]) == 0
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM visits_2024").fetchone() == (500,)
        conn.execute("CREATE TABLE pairs (a int, b int) PARTITION BY RANGE (a, b)")
    capsys.readouterr()
    assert main(["seed", "synthetic", "--database-url", url, "--rows", "500"]) == 2
    assert "public.pairs is partitioned by (a, b)" in capsys.readouterr().err
    with psycopg.connect(url) as conn:  # refused before anything was written
        assert conn.execute("SELECT count(*) FROM visits").fetchone() == (500,)


def test_a_table_a_key_gives_fewer_rows_than_asked_is_said_so(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, 40 profiles for 50 asked were seeded without a word (one per user, 40 users)."""
    url = database_of(pg_server, "cli_capped", """
        CREATE TABLE users (id serial PRIMARY KEY);
        CREATE TABLE profiles (user_id int PRIMARY KEY REFERENCES users, bio text);
        CREATE TABLE tags (id serial PRIMARY KEY);
        CREATE TABLE user_tags (user_id int REFERENCES users, tag_id int REFERENCES tags,
                                PRIMARY KEY (user_id, tag_id));
    """)  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("rows: 50\ntables:\n  users: {rows: 40}\n  tags: {rows: 1}\n")
    assert main(["seed", "synthetic", "--database-url", url, "--config", str(recipe)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "fewer rows than asked in public.profiles 40 (one per public.users row" in said
    assert "public.user_tags 40 (every combination of public.tags and public.users" in said
    argv = ["seed", "synthetic", "--database-url", url, "--config", str(recipe), "--json"]
    assert main(argv) == 0
    capped = json.loads(capsys.readouterr().out)["capped"]
    assert capped["public.profiles"] == {"rows": 40, "why": "one per public.users row it can name"}


def test_checked_columns_are_seeded_and_an_unpassable_check_refused_with_the_fix(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = database_of(pg_server, "cli_checks", """
        CREATE TABLE reviews (id bigserial PRIMARY KEY,
            stars int NOT NULL CHECK (stars BETWEEN 1 AND 5),
            posted date NOT NULL, edited date, CHECK (edited >= posted));
    """)  # fmt: skip
    assert main(["seed", "synthetic", "--database-url", url, "--rows", "500"]) == 0
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(DISTINCT stars) FROM reviews").fetchone() == (5,)
        conn.execute(
            r"ALTER TABLE reviews ADD ref text NOT NULL DEFAULT '00000' CHECK (ref ~ '^(\d)\1{4}$')"
        )
    capsys.readouterr()
    assert main(["seed", "synthetic", "--database-url", url, "--rows", "500"]) == 2
    assert "public.reviews.ref: 0 of the values" in capsys.readouterr().err
    with psycopg.connect(url) as conn:  # refused before anything was written
        assert conn.execute("SELECT count(*) FROM reviews").fetchone() == (500,)


@pytest.mark.parametrize(
    ("column", "values", "reason"),
    [
        ("stars", ["3", "three"], 'invalid input syntax for type smallint: "three"'),
        ("mood", ["ok", "glad"], 'invalid input value for enum mood: "glad"'),
        ("code", ["AB", "ABCD"], "'ABCD' is longer than character varying(3) holds"),
        ("share", ["1.5", "1000"], "numeric field overflow; A field with precision 5, scale 2"),
        ("flags", ["1010", "101"], "'101' is not exactly 4 bits, as bit(4) holds"),
    ],
)
def test_a_recipe_value_its_column_cannot_hold_is_refused_before_writing(
    pg_server: PgServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    column: str,
    values: list[str],
    reason: str,
) -> None:
    """Before, the load failed on it after emptying the tables (rolled back, but late)."""
    url = database_of(pg_server, "cli_recipe_values", """
        CREATE DOMAIN stars AS smallint CHECK (VALUE BETWEEN 1 AND 5);
        CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE notes (id int PRIMARY KEY, stars stars, mood mood, code varchar(3),
                            share numeric(5, 2), flags bit(4));
        INSERT INTO notes (id) VALUES (1);
    """)  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    columns = {column: {"values": values}}
    recipe.write_text(yaml.safe_dump({"tables": {"notes": {"columns": columns}}}))
    capsys.readouterr()
    assert main(["seed", "synthetic", "--database-url", url, "--config", str(recipe)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"tables.notes.columns.{column}.values:" in err
    assert reason in err
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (1,)
    # Values the column holds but a check refuses are dropped, not an error.
    fine = {"stars": {"values": ["3", "9"]}}
    recipe.write_text(yaml.safe_dump({"tables": {"notes": {"columns": fine}}}))
    assert main(["seed", "synthetic", "--database-url", url, "--config", str(recipe)]) == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT DISTINCT stars FROM notes WHERE stars > 0").fetchall() == [(3,)]


def test_unreachable_database_fails_without_printing_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://app:hunter2@127.0.0.1:1/app"
    assert main(["seed", "synthetic", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err
    assert "hunter2" not in err


def test_inspect_guesses_personal_data_and_writes_rules(
    shop_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    assert main(["seed", "inspect", shop_url, "--rules-out", str(rules), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["public.customers"]["columns"]["email"]["pii"].startswith("email")
    assert document["public.customers"]["columns"]["country"]["pii"] is None
    parsed = yaml.safe_load(rules.read_text())
    assert parsed["tables"]["public.customers"]["email"] == {"fake": "email"}
    assert parsed["tables"]["public.customers"]["id"] == "keep"
    assert parsed["tables"]["public.orders"]["shipping_address"] == {"fake": "street_address"}


MEMBERS = """
    CREATE TYPE address AS (street text, city text, postcode text);
    CREATE TABLE members (
        email text PRIMARY KEY, birth_date date, last_ip inet, salary numeric(10, 2),
        phones text[], login_count bigint, ref_code varchar(12) UNIQUE, username text UNIQUE,
        home address NOT NULL, work address
    );
    CREATE TABLE invites (
        id int PRIMARY KEY, inviter text REFERENCES members, code varchar(12)
        REFERENCES members (ref_code), note text
    );
    CREATE TABLE posts (id int PRIMARY KEY, author text REFERENCES members (username));
"""
MEMBER_ROWS = """
    INSERT INTO members SELECT 'm' || g || '@corp.example', date '1980-01-01' + g, '10.0.0.1',
        1000 + g, ARRAY['+49 30 1234567'], 1000000 + g, '+49301234' || g, 'member' || g,
        ROW(g || ' Main St', 'Berlin', '1011' || g)::address,
        ROW('1 Work Way', 'Hamburg', '20095')::address
    FROM generate_series(1, 50) g;
    INSERT INTO invites SELECT g, 'm' || (1 + g % 50) || '@corp.example',
        '+49301234' || (1 + g % 50), 'hi' FROM generate_series(1, 80) g;
    INSERT INTO posts SELECT g, 'member' || (1 + g % 50) FROM generate_series(1, 90) g;
"""


def test_the_rules_inspect_writes_are_taken_by_the_anonymiser_as_they_are(
    source: str, target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Each guess becomes a rule its column's type takes; a key and its references share one.

    The shop's order dates look like phone numbers to the value patterns
    (digits and dashes), and a birth date, an address in an ``inet`` column
    or a salary cannot be faked as text.
    """
    for url in (source, target):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(MEMBERS)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(MEMBER_ROWS)
    rules = tmp_path / "rules.yaml"
    assert main(["seed", "inspect", source, "--rules-out", str(rules), "--json"]) == 0
    home = json.loads(capsys.readouterr().out)["public.members"]["columns"]["home"]
    assert home["fields"] == {"street": "text", "city": "text", "postcode": "text"}
    assert home["pii"] == "street_address (by field street)"
    written = rules.read_text()
    tables = yaml.safe_load(written)["tables"]
    assert tables["public.orders"]["placed_on"] == "keep"
    assert tables["public.members"] | {"ref_code": None, "username": None} == {
        "email": {"fake": "email"},
        "birth_date": {"date_shift": {"max_days": 365}},
        "last_ip": "null",
        "salary": {"noise": 0.1},
        "phones": "null",
        "login_count": "keep",
        "home": {
            "fields": {
                "street": {"fake": "street_address"},
                "city": {"fake": "city"},
                "postcode": {"fake": "postcode"},
            }
        },
        "work": {
            "fields": {
                "street": {"fake": "street_address"},
                "city": {"fake": "city"},
                "postcode": {"fake": "postcode"},
            }
        },
        "ref_code": None,
        "username": None,
    }
    # Columns referencing a guessed key get its rule, guessed themselves or not.
    assert tables["public.invites"]["inviter"] == {"fake": "email"}
    assert tables["public.invites"]["code"] == tables["public.members"]["ref_code"]
    assert tables["public.members"]["username"] == {"fake": "user_name"}
    assert "author: {fake: user_name}  # same rule as public.members.username" in written
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    capsys.readouterr()
    args = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(rules)]
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"]["public.invites"] == 80
    assert summary["leak_check"]["hits"] == {}
    with psycopg.connect(target) as conn:
        joined = "SELECT count(*) FROM invites i JOIN members m ON m.email = i.inviter"
        assert conn.execute(joined).fetchone() == (80,)
        joined = "SELECT count(*) FROM posts p JOIN members m ON m.username = p.author"
        assert conn.execute(joined).fetchone() == (90,)
        assert conn.execute("SELECT count(*) FROM members WHERE last_ip IS NULL").fetchone() == (
            50,
        )
        moved = "SELECT count(*) FROM members WHERE (home).city <> 'Berlin' AND (work).street"
        assert conn.execute(moved + " <> '1 Work Way'").fetchone() == (50,)


def test_inspect_prints_names_as_they_are_and_a_composite_with_its_fields(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A column named like console markup is printed as named, not styled (and lost)."""
    url = pg_server.create_database("inspect_markup")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            'CREATE TYPE spot AS (lat numeric, "[i]lon[/i]" numeric);'
            ' CREATE TABLE places (id int PRIMARY KEY, "[bold]secret[/bold]" text, at spot)'
        )
    assert main(["seed", "inspect", url]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "[bold]secret[/bold]" in printed
    assert "spot (lat numeric," in printed  # the cell wraps where the console is narrow
    assert "[i]lon[/i] numeric)" in printed


def test_inspect_gives_up_sampling_a_column_that_takes_too_long_and_says_so(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mostly-NULL column of a large table: finding 50 values means reading all of it."""
    url = database_of(pg_server, "inspect_sparse", """
        CREATE TABLE events (id int PRIMARY KEY, contact text, kind text);
        INSERT INTO events SELECT g, CASE WHEN g > 399990 THEN 'p' || g || '@corp.example'
            END, 'click' FROM generate_series(1, 400000) g;
    """)  # fmt: skip
    assert main(["seed", "inspect", url, "--json"]) == 0
    columns = json.loads(capsys.readouterr().out)["public.events"]["columns"]
    assert columns["contact"]["pii"] == "email (by values)", "found at the end of the table"
    assert columns["contact"]["sampled"] is True
    assert main(["seed", "inspect", url, "--json", "--sample-timeout", "0.001"]) == 0
    printed = capsys.readouterr()
    columns = json.loads(printed.out)["public.events"]["columns"]
    assert columns["contact"] == columns["contact"] | {"pii": None, "sampled": False}
    assert "guessed by name only" in printed.err
    assert "public.events.contact" in printed.err


def test_a_date_or_a_number_is_never_guessed_from_values_that_look_like_phone_numbers() -> None:
    for category in (Category.DATE, Category.INTEGER, Category.NUMERIC):
        column = Column("placed", category.value, category, nullable=True)
        assert guess(column, ["2024-01-15", "2024-02-01", "1234567890"]) is None
    assert guess(Column("placed", "text", Category.TEXT, True), ["2024-01-15"]) is not None


def test_a_yaml_null_is_the_null_rule() -> None:
    rules = parse_rules(yaml.safe_load("version: 1\ntables:\n  people:\n    ssn: null\n"))
    assert rules.tables["people"]["ssn"] == Rule("null", {})


def test_pii_is_guessed_from_values_too() -> None:
    column = Column("contact", "text", Category.TEXT, nullable=True)
    assert guess(column, ["a@example.com", "b@example.org", "c@x.io"]) is not None
    assert guess(column, ["red", "green"]) is None


def test_an_address_column_is_personal_data_by_its_type_and_an_orgs_name_a_company() -> None:
    """Before, ``last_login inet`` was guessed a user name and ``orgs.name`` a person's."""
    address = Column("last_login", "inet", Category.INET, nullable=True)
    assert guess(address, []) == PiiGuess("last_login", "type", "ipv4")
    assert rule_for(address, "ipv4") == "'null'"
    name = Column("name", "text", Category.TEXT, nullable=False)
    for table in ("orgs", "organizations", "company", "billing_companies", "team"):
        assert guess(name, [], table) == PiiGuess("name", "name", "company"), table
    for table in ("users", "customers", "contacts", "steam"):
        assert guess(name, [], table) == PiiGuess("name", "name", "name"), table
    handle = Column("handle", "citext", Category.TEXT, nullable=True)
    assert guess(handle, [], "accounts") == PiiGuess("handle", "name", "user_name")
    company = Column("company_name", "text", Category.TEXT, nullable=True)
    assert guess(company, [], "users") == PiiGuess("company_name", "name", "company")


def test_pictures_and_postal_codes_are_personal_a_categorys_name_is_not() -> None:
    """Before, pagila's ``staff.picture`` and ``address.postal_code`` were kept as they were,
    and ``category.name`` and ``language.name`` were faked as people's names."""
    picture = Column("picture", "bytea", Category.BYTEA, nullable=True)
    assert guess(picture, [], "staff") == PiiGuess("picture", "name", "photo")
    assert rule_for(picture, "photo") == "'null'"
    scan = Column("passport_scan", "bytea", Category.BYTEA, nullable=False)
    guessed = guess(scan, [], "people")
    assert guessed is not None
    assert rule_for(scan, guessed.suggestion) == "{constant: ''}"
    assert guess(Column("checksum", "bytea", Category.BYTEA, True), [], "files") is None
    postal = Column("postal_code", "character varying(10)", Category.TEXT, nullable=True)
    assert guess(postal, [], "address") == PiiGuess("postal_code", "name", "postcode")
    avatar = Column("avatar_url", "text", Category.TEXT, nullable=True)
    assert guess(avatar, [], "users") == PiiGuess("avatar_url", "name", "image_url")
    name = Column("name", "character varying(25)", Category.TEXT, nullable=False)
    for table in ("category", "language", "product_categories", "tags", "countries"):
        assert guess(name, [], table) is None, table
    assert guess(name, [], "customers") == PiiGuess("name", "name", "name")


def test_a_json_document_is_personal_data_by_its_keys_and_takes_a_rule_json_takes() -> None:
    """Before, no JSON column was ever guessed: an order's shipping document was kept."""
    shipping = Column("shipping", "jsonb", Category.JSON, nullable=False)
    documents = ['{"name": "A B", "street": "1 Main St", "city": "Berlin"}', "not json"]
    streets = (("street", "street_address"), ("city", "city"))
    assert guess(shipping, documents, "orders") == PiiGuess(
        "shipping", "keys street, city", "street_address", streets
    )
    assert rule_for(shipping, "street_address") == "{constant: '{}'}"
    assert rule_for(shipping, "street_address", streets) == (
        "{keys: {street: {fake: street_address}, city: {fake: city}}}"
    )
    nested = ['[{"contact": {"firstName": "Ann", "phoneNumber": "+1 555"}}]']
    assert guess(shipping, nested) == PiiGuess(
        "shipping", "keys first_name, phone_number", "first_name"
    )
    keyed = ['{"roles": {"alice@corp.example": "admin"}}']  # the address is never printed
    assert guess(shipping, keyed) == PiiGuess("shipping", "key <e-mail address>", "email")
    # A bare name says nothing of whose; a document named for an address says it all.
    assert guess(shipping, ['{"name": "Widget", "colour": "red"}'], "orders") is None
    address = Column("address", "json", Category.JSON, nullable=True)
    assert guess(address, []) == PiiGuess("address", "name", "street_address")
    assert rule_for(address, "street_address") == "'null'"


def test_a_json_documents_guessed_keys_get_a_rule_each_where_a_rule_reaches_them() -> None:
    """Supabase's ``raw_user_meta_data`` and ``identity_data`` were nulled or emptied whole;
    a rule per key keeps the rest of the document (the provider, the flags) for the app."""
    doc = Column("meta", "jsonb", Category.JSON, nullable=False)
    sampled = [
        '{"email": "a@corp.example", "email_verified": true, "sub": "42",'
        ' "home": {"street": "1 Main St", "city": "Berlin"}, "plan": "pro"}',
        '{"contacts": [{"phone": "+1 555 0100"}], "lat": 52.5, "first name": "Ann"}',
        '{"address": {"line1": "1 Main St"}}',
        '{"address": "1 Main St"}',
    ]
    found = guess(doc, sampled, "users")
    assert found is not None
    assert rule_for(doc, found.suggestion, found.keys) == (
        "{keys: {email: {fake: email}, home.street: {fake: street_address},"
        " home.city: {fake: city}, contacts: 'null', lat: 'null',"
        " \"first name\": {fake: first_name}, address: 'null'}}"
    )
    rules = yaml.safe_load(f"x: {rule_for(doc, found.suggestion, found.keys)}")["x"]["keys"]
    assert rules["first name"] == {"fake": "first_name"}
    # No path reaches into a list of documents, nor a key holding a dot: the whole then.
    for unreachable in ('[{"email": "a@corp.example"}]', '{"a.b": {"email": "x"}}'):
        found = guess(doc, [unreachable])
        assert found is not None
        assert rule_for(doc, found.suggestion, found.keys) == "{constant: '{}'}"


def test_session_keys_and_cookies_are_secrets_and_free_text_is_personal() -> None:
    """Django's ``django_session`` was kept whole: live session keys and their data."""
    for name in ("session_key", "session_data", "api_key", "auth_cookie", "credentials"):
        column = Column(name, "text", Category.TEXT, nullable=False)
        assert guess(column, [], "django_session") == PiiGuess(name, "name", "hash"), name
        assert rule_for(column, "hash") == "hash"
    for name in ("notes", "comment", "remarks", "bio", "delivery_notes"):
        column = Column(name, "text", Category.TEXT, nullable=False)
        assert guess(column, [], "orders") == PiiGuess(name, "name", "sentence"), name
        assert rule_for(column, "sentence") == "{fake: sentence}"
    for name in ("commentable_type", "notes_count", "biome"):
        assert guess(Column(name, "text", Category.TEXT, nullable=False), [], "orders") is None
    group = Column("name", "character varying(150)", Category.TEXT, nullable=False)
    for table in ("auth_group", "departments", "sites", "locations"):
        assert guess(group, [], table) is None, table


def test_the_rules_inspect_writes_for_sessions_notes_and_documents_anonymise_them(
    pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An app's own session table gets its keys and data hashed; Django's is left whole."""
    ddl = """
    CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL,
                                 expire_date timestamptz NOT NULL);
    CREATE TABLE remembered (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL,
                             expire_date timestamptz NOT NULL);
    CREATE TABLE deliveries (id bigint PRIMARY KEY, notes text NOT NULL, shipping jsonb NOT NULL,
                             extra jsonb);
    """
    rows = """
    INSERT INTO django_session SELECT md5(g::text), 'eyJfYXV0aF91c2VyX2lkIjoi' || g,
        now() + interval '14 days' FROM generate_series(1, 30) g;
    INSERT INTO remembered SELECT * FROM django_session;
    INSERT INTO deliveries SELECT g, 'Call Realname Person' || g || ' before noon',
        jsonb_build_object('recipient', jsonb_build_object('fullName', 'Realname Person' || g),
                           'street', g || ' Real Street'),
        jsonb_build_object('email', 'real.person' || g || '@corp.example')
    FROM generate_series(1, 30) g;
    """
    source = database_of(pg_server, "inspect_docs_source", ddl + rows)
    target = database_of(pg_server, "inspect_docs_target", ddl)
    rules = tmp_path / "rules.yaml"
    assert main(["seed", "inspect", source, "--rules-out", str(rules)]) == 0
    tables = yaml.safe_load(rules.read_text())["tables"]
    assert tables["public.django_session"] == "leave"
    assert tables["public.remembered"] == {
        "session_key": "hash", "session_data": "hash", "expire_date": "keep",
    }  # fmt: skip
    assert tables["public.deliveries"] == {
        "id": "keep", "notes": {"fake": "sentence"},
        "shipping": {"keys": {"street": {"fake": "street_address"},
                              "recipient.fullName": {"fake": "name"}}},
        "extra": {"keys": {"email": {"fake": "email"}}},
    }  # fmt: skip
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    capsys.readouterr()
    args = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(rules)]
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["leak_check"]["hits"] == {}
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM django_session").fetchone() == (0,)
        kept = "SELECT count(*) FROM remembered WHERE session_key = md5('1')"
        assert conn.execute(kept).fetchone() == (0,)
        distinct = "SELECT count(DISTINCT session_key) FROM remembered"
        assert conn.execute(distinct).fetchone() == (30,)
        real = "SELECT count(*) FROM deliveries WHERE notes LIKE '%Realname%'"
        assert conn.execute(real).fetchone() == (0,)
        # Each document keeps its shape, its personal values rewritten.
        shaped = (
            "SELECT count(*) FROM deliveries WHERE shipping->'recipient' ? 'fullName'"
            " AND shipping->>'street' NOT LIKE '% Real Street' AND extra->>'email' LIKE '%@%'"
            " AND extra->>'email' NOT LIKE 'real.person%'"
        )
        assert conn.execute(shaped).fetchone() == (30,)


def test_a_search_vector_is_personal_by_its_type_and_a_generated_column_needs_no_rule() -> None:
    """A trigger's ``tsvector`` of names and e-mails was kept; a generated one got a rule."""
    vector = Column("search", "tsvector", Category.OTHER, nullable=False, base_type="tsvector")
    assert guess(vector, ["'alice@corp.example':2 'alice':1"]) == PiiGuess(
        "search", "type", "search_words"
    )
    assert rule_for(vector, "search_words") == "{constant: ''}"
    blank = Column("search", "tsvector", Category.OTHER, nullable=True, base_type="tsvector")
    assert rule_for(blank, "search_words") == "'null'"
    table = Table(
        "public", "people",
        (Column("email", "text", Category.TEXT, nullable=False),
         Column("email_lower", "text", Category.TEXT, nullable=True, generated=True)),
    )  # fmt: skip
    written = rules_text(Schema((table,)), {})
    assert "    # email_lower: generated by the server, needs no rule" in written
    assert "email_lower:" not in written.replace("# email_lower:", "")


def test_a_things_name_is_no_ones_whatever_its_prefix() -> None:
    """ActiveStorage's ``service_name`` ("local") and an attachment's ``name`` ("avatar")
    were faked as people's names, which breaks the attachments."""
    things = [("service_name", "active_storage_blobs"), ("productName", "orders"),
              ("name", "active_storage_attachments"), ("queue_name", "jobs"),
              ("name", "objects"), ("image", "products")]  # fmt: skip
    for name, table in things:
        assert guess(Column(name, "varchar", Category.TEXT, nullable=False), [], table) is None
    people = [("first_name", "first_name"), ("display_name", "name"),
              ("company_name", "company"), ("customer_name", "name")]  # fmt: skip
    for name, provider in people:
        column = Column(name, "varchar", Category.TEXT, nullable=False)
        assert guess(column, [], "orders") == PiiGuess(name, "name", provider), name


def test_an_hstore_is_personal_data_by_its_keys() -> None:
    pairs = Column("properties", "hstore", Category.OTHER, nullable=False, base_type="hstore")
    sampled = ['"plan"=>"pro", "phoneNumber"=>"+1 555 0100"', '"name"=>"x"']
    assert guess(pairs, sampled) == PiiGuess("properties", "key phone_number", "phone_number")
    assert rule_for(pairs, "phone_number") == "{constant: ''}"
    assert guess(pairs, ['"plan"=>"pro", "name"=>"Widget"']) is None


def test_words_that_only_begin_like_a_hint_are_not_it() -> None:
    """Before, ``ip_address`` was faked as a street address, ``tokenable_type`` hashed."""
    text = lambda name: Column(name, "varchar", Category.TEXT, nullable=True)  # noqa: E731
    assert guess(text("ip_address"), [], "sessions") == PiiGuess("ip_address", "name", "ipv4")
    assert guess(text("last_ip"), [], "users") == PiiGuess("last_ip", "name", "ipv4")
    for name in ("tokenable_type", "secretary", "ipsum", "sessionable"):
        assert guess(text(name), [], "things") is None, name
    for name in ("token", "auth_tokens", "client_secret", "session_id", "cookie_value"):
        assert guess(text(name), [], "accounts") == PiiGuess(name, "name", "hash"), name
    assert guess(text("name"), [], "personal_access_tokens") is None  # the token's label


def test_inspect_guesses_nothing_of_a_polymorphic_references_type(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rails' ``addressable_type`` ("Customer") was faked as a street address."""
    url = database_of(pg_server, "inspect_polymorphic", """
        CREATE TABLE addresses (id bigserial PRIMARY KEY,
            addressable_type varchar(255) NOT NULL, addressable_id bigint NOT NULL,
            street varchar(255) NOT NULL);
        INSERT INTO addresses (addressable_type, addressable_id, street)
            VALUES ('Customer', 1, '1 Main St');
    """)  # fmt: skip
    assert main(["seed", "inspect", url, "--json"]) == 0
    columns = json.loads(capsys.readouterr().out)["public.addresses"]["columns"]
    assert columns["addressable_type"]["pii"] is None
    assert columns["street"]["pii"] == "street_address (by name)"


def test_inspect_copies_credential_tables_empty_unless_a_copied_row_needs_them() -> None:
    """Phoenix's ``users_tokens`` (a bytea token under a unique key) had no rule to take."""
    ids = (Column("id", "bigint", Category.INTEGER, nullable=False),)
    ref = (Column("token_id", "bigint", Category.INTEGER, nullable=True),)

    def table(name: str, references: str = "") -> Table:
        fks = (ForeignKey("fk", ("token_id",), references, ("id",)),) if references else ()
        return Table("public", name, ids + ref if fks else ids, ("id",), foreign_keys=fks)

    schema = Schema((
        table("users_tokens"), table("oauth_access_tokens"), table("tokenizers"),
        table("AspNetUserTokens"), table("ApiKeys"), table("Session"), table("VerificationToken"),
        table("oauth_access_grants"), table("grants"),
        table("audit", "public.oauth_access_tokens"),
        table("refresh_tokens", "public.users_tokens"),
    ))  # fmt: skip
    assert credential_tables(schema, lambda t: False) == [
        "public.ApiKeys", "public.AspNetUserTokens", "public.Session", "public.VerificationToken",
        "public.oauth_access_grants", "public.refresh_tokens", "public.users_tokens",
    ]  # fmt: skip
    written = rules_text(schema, {})
    assert "  public.users_tokens: skip  # credentials" in written
    assert "  public.oauth_access_tokens:\n    id: keep" in written


def test_pascal_and_camel_case_names_are_read_as_their_words() -> None:
    """ASP.NET Identity's ``NormalizedEmail`` (every address upper-cased) was kept, and
    ``LoginProvider`` ("Google", half a key) faked as a user name."""
    text = lambda name: Column(name, "text", Category.TEXT, nullable=True)  # noqa: E731
    expected = {
        "NormalizedEmail": "email", "NormalizedUserName": "user_name", "UserName": "user_name",
        "IPAddress": "ipv4", "ProviderKey": "hash", "uid": "hash", "login": "user_name",
    }  # fmt: skip
    for name, suggestion in expected.items():
        assert guess(text(name), [], "AspNetUsers") == PiiGuess(name, "name", suggestion), name
    for name in ("LoginProvider", "SecurityStamp", "fluid", "login_count"):
        assert guess(text(name), [], "AspNetUsers") is None, name
