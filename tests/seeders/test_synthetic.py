"""Synthetic seeding: constraint-correct, realistic, deterministic, atomic."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seeders.anonymise.pii import PiiGuess, guess
from seeders.schema.introspect import introspect
from seeders.schema.model import Category, Column, Schema
from seeders.synthetic import partitions, values
from seeders.synthetic.generator import (
    ColumnOverride,
    SyntheticConfig,
    SyntheticGenerator,
    must_be_unique,
    seed_database,
)
from seeders.synthetic.values import CannotGenerate, text_provider
from tests.pg_server import PgServer

ORPHANS = {
    "orders.customer_id": """
        SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id
        WHERE c.id IS NULL""",
    "orders.last_shipment_id": """
        SELECT count(*) FROM orders o LEFT JOIN shipments s ON s.id = o.last_shipment_id
        WHERE o.last_shipment_id IS NOT NULL AND s.id IS NULL""",
    "shipments.stock": """
        SELECT count(*) FROM shipments s LEFT JOIN stock k
          ON (k.warehouse_code, k.product_id) = (s.warehouse_code, s.product_id)
        WHERE k.product_id IS NULL""",
    "customers.referred_by": """
        SELECT count(*) FROM customers c LEFT JOIN customers p ON p.id = c.referred_by
        WHERE c.referred_by IS NOT NULL AND p.id IS NULL""",
}


def seed(conn: psycopg.Connection[Any], config: SyntheticConfig) -> dict[str, int]:
    return seed_database(conn, SyntheticGenerator(introspect(conn), config)).rows


def count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return int(row[0])


def test_every_table_gets_its_rows_and_every_reference_exists(
    shop: psycopg.Connection[Any],
) -> None:
    rows = seed(shop, SyntheticConfig(default_rows=500, rows={"warehouses": 5}))
    assert rows["public.customers"] == 500
    assert rows["public.warehouses"] == 5
    assert count(shop, "SELECT count(*) FROM customers") == 500
    for name, query in ORPHANS.items():
        assert count(shop, query) == 0, name
    # Foreign keys were re-added and validated by PostgreSQL itself.
    assert (
        count(shop, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated") == 9
    )


def test_cycle_and_self_reference_get_real_values(shop: psycopg.Connection[Any]) -> None:
    seed(shop, SyntheticConfig(default_rows=300))
    assert count(shop, "SELECT count(*) FROM orders WHERE last_shipment_id IS NOT NULL") > 200
    assert count(shop, "SELECT count(*) FROM customers WHERE referred_by IS NOT NULL") > 100
    assert count(shop, "SELECT count(*) FROM customers WHERE referred_by >= id") == 0, "a tree"


def test_values_respect_types_lengths_and_checks(shop: psycopg.Connection[Any]) -> None:
    seed(shop, SyntheticConfig(default_rows=400))
    assert count(shop, "SELECT count(*) FROM customers WHERE email NOT LIKE '%@%'") == 0
    assert count(shop, "SELECT count(*) FROM customers WHERE length(country) <> 2") == 0
    assert count(shop, "SELECT count(*) FROM customers WHERE updated_at < created_at") == 0
    assert count(shop, "SELECT count(DISTINCT status) FROM orders") == 4
    assert count(shop, "SELECT count(*) FROM products WHERE doubled <> price * 2") == 0
    assert count(shop, "SELECT count(*) FROM customers WHERE phone IS NULL") > 0, (
        "nullable gets gaps"
    )
    assert count(shop, "SELECT count(*) FROM customers WHERE cardinality(tags) > 0") == 400


def test_sequences_continue_after_the_loaded_keys(shop: psycopg.Connection[Any]) -> None:
    seed(shop, SyntheticConfig(default_rows=50))
    row = shop.execute(
        "INSERT INTO products (sku, name, price) VALUES ('new', 'n', 1) RETURNING id"
    ).fetchone()
    assert row == (51,)


def dump(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return (
        conn.execute("SELECT * FROM customers ORDER BY id").fetchall()
        + conn.execute("SELECT * FROM shipments ORDER BY id").fetchall()
    )


def test_same_seed_same_data_other_seed_other_data(shop_url: str, pg_url: str) -> None:
    with psycopg.connect(shop_url, autocommit=True) as conn:
        seed(conn, SyntheticConfig(default_rows=100, seed=7))
        first = dump(conn)
        seed(conn, SyntheticConfig(default_rows=100, seed=7))
        assert dump(conn) == first
        seed(conn, SyntheticConfig(default_rows=100, seed=8))
        assert dump(conn) != first


def test_overrides_use_a_provider_or_fixed_values(shop: psycopg.Connection[Any]) -> None:
    overrides = {
        "customers": {
            "country": ColumnOverride(values=("DE", "FR")),
            "full_name": ColumnOverride(provider="company"),
        }
    }
    seed(shop, SyntheticConfig(default_rows=200, overrides=overrides))
    countries = {r[0] for r in shop.execute("SELECT DISTINCT country FROM customers")}
    assert countries == {"DE", "FR"}


def test_unknown_override_column_or_provider_is_refused(shop: psycopg.Connection[Any]) -> None:
    schema = introspect(shop)
    with pytest.raises(KeyError, match="nope"):
        SyntheticGenerator(
            schema,
            SyntheticConfig(overrides={"customers": {"nope": ColumnOverride(values=("x",))}}),
        )
    with pytest.raises(ValueError, match="not a Faker provider"):
        SyntheticGenerator(
            schema,
            SyntheticConfig(overrides={"customers": {"email": ColumnOverride(provider="nope")}}),
        )


def test_a_failed_load_leaves_the_previous_data(shop: psycopg.Connection[Any]) -> None:
    seed(shop, SyntheticConfig(default_rows=30))
    before = dump(shop)
    bad = {"products": {"price": ColumnOverride(values=("-5",))}}  # violates CHECK (price >= 0)
    with pytest.raises(psycopg.errors.CheckViolation):
        seed(shop, SyntheticConfig(default_rows=30, seed=99, overrides=bad))
    assert dump(shop) == before
    assert count(shop, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 9


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    customers=st.integers(0, 40),
    products=st.integers(1, 30),
    warehouses=st.integers(1, 4),
    stock=st.integers(0, 200),
    orders=st.integers(0, 60),
    seed_value=st.integers(0, 2**32),
)
def test_any_row_counts_give_a_consistent_database(
    shop: psycopg.Connection[Any],
    customers: int,
    products: int,
    warehouses: int,
    stock: int,
    orders: int,
    seed_value: int,
) -> None:
    rows = {"customers": customers, "products": products, "warehouses": warehouses,
            "stock": stock, "orders": orders if customers else 0,
            "shipments": orders if (customers and stock) else 0,
            "order_lines": orders}  # fmt: skip
    if not customers:
        rows["order_lines"] = 0
    loaded = seed(shop, SyntheticConfig(rows=rows, seed=seed_value))
    assert loaded["public.stock"] <= products * warehouses, "composite key combinations are capped"
    for name, query in ORPHANS.items():
        assert count(shop, query) == 0, name


def test_a_latin1_database_gets_its_text_intact(pg_server: PgServer) -> None:
    url = pg_server.create_database("synthetic_latin1", encoding="LATIN1")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE towns (id int PRIMARY KEY, name text NOT NULL)")
        overrides = {"towns": {"name": ColumnOverride(values=("Zoë", "Düsseldorf"))}}
        seed(conn, SyntheticConfig(default_rows=20, overrides=overrides))
        conn.execute("SET client_encoding TO 'UTF8'")
        names = {r[0] for r in conn.execute("SELECT DISTINCT name FROM towns")}
    assert names == {"Zoë", "Düsseldorf"}


PARTITIONED = """
    CREATE TABLE accounts (id int PRIMARY KEY, region text NOT NULL);
    -- by month, and only for 2024: most of the seeder's dates fit no partition
    CREATE TABLE events (id bigint, at date, account int REFERENCES accounts,
                         PRIMARY KEY (at, id)) PARTITION BY RANGE (at);
    CREATE TABLE events_2024_h1 PARTITION OF events
        FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
    CREATE TABLE events_2024_h2 PARTITION OF events
        FOR VALUES FROM ('2024-07-01') TO ('2025-01-01')
        PARTITION BY LIST (at);  -- a sub-partition: only the first of each month
    CREATE TABLE events_2024_h2_firsts PARTITION OF events_2024_h2 FOR VALUES IN
        ('2024-07-01', '2024-08-01', '2024-09-01', '2024-10-01', '2024-11-01', '2024-12-01');
    CREATE TABLE ledgers (id int, code text, PRIMARY KEY (code, id)) PARTITION BY LIST (code);
    CREATE TABLE ledgers_ab PARTITION OF ledgers FOR VALUES IN ('a', 'b');
    CREATE TABLE readings (id int PRIMARY KEY, value int) PARTITION BY HASH (id);
    CREATE TABLE readings_0 PARTITION OF readings FOR VALUES WITH (MODULUS 2, REMAINDER 0);
    CREATE TABLE readings_1 PARTITION OF readings FOR VALUES WITH (MODULUS 2, REMAINDER 1);
"""


@contextmanager
def database_of(
    pg_server: PgServer, name: str, ddl: str
) -> Iterator[tuple[psycopg.Connection[Any], Schema]]:
    """A fresh database of ``ddl``, and its schema as the seeder reads it."""
    with psycopg.connect(pg_server.create_database(name), autocommit=True) as conn:
        conn.execute(ddl.encode())
        yield conn, introspect(conn)


def test_partitioned_tables_get_keys_their_partitions_accept(pg_server: PgServer) -> None:
    with database_of(pg_server, "synthetic_partitions", PARTITIONED) as (conn, schema):
        config = partitions.fit(conn, schema, SyntheticConfig(default_rows=3000))
        rows = seed_database(conn, SyntheticGenerator(schema, config)).rows
        assert rows == {"public.accounts": 3000, "public.events": 3000,
                        "public.ledgers": 3000, "public.readings": 3000}  # fmt: skip
        per_partition = conn.execute(
            "SELECT tableoid::regclass::text, count(*), count(DISTINCT at) FROM events GROUP BY 1"
        ).fetchall()
        by_name = {name: (n, days) for name, n, days in per_partition}
        assert set(by_name) == {"events_2024_h1", "events_2024_h2_firsts"}
        assert by_name["events_2024_h2_firsts"][1] == 6
        assert count(conn, "SELECT count(DISTINCT code) FROM ledgers") == 2


def test_a_partitioned_table_the_seeder_cannot_fill_is_refused_with_the_fix(
    pg_server: PgServer,
) -> None:
    ddl = """
        CREATE TABLE days (at date PRIMARY KEY) PARTITION BY RANGE (at);
        CREATE TABLE days_w1 PARTITION OF days FOR VALUES FROM ('2024-01-01') TO ('2024-01-08');
        CREATE TABLE pairs (a int, b int) PARTITION BY RANGE (a, b);
    """
    with database_of(pg_server, "synthetic_partitions_refused", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"public.days.at: 7 of .*1000 needed.*values: \["):
            partitions.fit(conn, schema, SyntheticConfig(rows={"pairs": 0}))
        with pytest.raises(CannotGenerate, match=r"partitioned by \(a, b\).*rows: 0"):
            partitions.fit(conn, schema, SyntheticConfig(rows={"days": 7}))
        config = partitions.fit(conn, schema, SyntheticConfig(rows={"days": 7, "pairs": 0}))
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT at) FROM days") == 7


def test_a_partition_the_invented_values_miss_gets_its_own_bound_values(
    pg_server: PgServer,
) -> None:
    ddl = """
        CREATE TABLE old (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE old_1990 PARTITION OF old FOR VALUES FROM ('1990-01-01') TO ('1991-01-01');
    """
    with database_of(pg_server, "synthetic_partitions_bounds", ddl) as (conn, schema):
        config = partitions.fit(conn, schema, SyntheticConfig(default_rows=100))
        assert config.accepted_values == {"public.old": {"at": ("1990-01-01",)}}
        override = {"old": {"at": ColumnOverride(values=("1990-03-01", "2001-01-01"))}}
        config = partitions.fit(conn, schema, SyntheticConfig(overrides=override))
        assert config.accepted_values == {"public.old": {"at": ("1990-01-01", "1990-03-01")}}
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(*) FROM old WHERE at < '1991-01-01'") == 1000


def test_expression_and_partial_unique_indexes_get_distinct_values(pg_server: PgServer) -> None:
    """``lower(email)`` and soft-delete indexes, as web frameworks create them, are unique sets."""
    ddl = """
        CREATE TABLE users (
            id int PRIMARY KEY, email text NOT NULL, handle text, "Nick Name" text,
            deleted_at timestamptz
        );
        CREATE UNIQUE INDEX ON users (lower(email)) WHERE deleted_at IS NULL;
        CREATE UNIQUE INDEX ON users (handle) WHERE deleted_at IS NULL;
        CREATE UNIQUE INDEX ON users (upper("Nick Name"), coalesce(handle, 'none'));
    """
    with database_of(pg_server, "synthetic_expression_unique", ddl) as (conn, schema):
        assert set(schema.table("public.users").unique) == {
            ("email",),
            ("handle",),
            ("Nick Name", "handle"),
        }
        rows = seed_database(conn, SyntheticGenerator(schema, SyntheticConfig(3000))).rows
        assert rows == {"public.users": 3000}  # the unique indexes were rebuilt
        assert count(conn, "SELECT count(DISTINCT lower(email)) FROM users") == 3000
        assert count(conn, "SELECT count(DISTINCT handle) FROM users") == 3000


def test_a_join_table_unique_over_its_references_gets_distinct_pairs(pg_server: PgServer) -> None:
    """Django's and Rails' many-to-many tables: an ``id`` of their own, ``UNIQUE (user_id,
    group_id)``. Before, each reference was drawn on its own and the rebuilt unique
    constraint failed the seed on the first repeated pair."""
    ddl = """
        CREATE TABLE users (id int PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, email text);
        CREATE TABLE groups (id int PRIMARY KEY, name text NOT NULL UNIQUE);
        CREATE TABLE memberships (
            id bigint PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
            user_id int NOT NULL REFERENCES users DEFERRABLE INITIALLY DEFERRED,
            group_id int NOT NULL REFERENCES groups DEFERRABLE INITIALLY DEFERRED,
            UNIQUE (user_id, group_id)
        );
        CREATE TABLE pins (  -- a pair of which only 2 x 3 exist
            user_id int REFERENCES users, group_id int REFERENCES groups,
            UNIQUE (group_id, user_id)
        );
    """
    config = SyntheticConfig(500, rows={"users": 400, "groups": 5, "pins": 10})
    small = SyntheticConfig(500, rows={"users": 2, "groups": 3, "pins": 10})
    with database_of(pg_server, "synthetic_join_tables", ddl) as (conn, schema):
        generator = SyntheticGenerator(schema, config)
        rows = seed_database(conn, generator).rows
        assert rows["public.memberships"] == 500
        pairs = "SELECT count(DISTINCT (user_id, group_id)) FROM memberships"
        assert count(conn, pairs) == 500
        assert count(conn, "SELECT count(DISTINCT group_id) FROM memberships") == 5
        assert count(conn, "SELECT count(DISTINCT user_id) FROM memberships") > 200
        dangling = "SELECT count(*) FROM memberships m LEFT JOIN users u ON u.id = m.user_id"
        assert count(conn, dangling + " WHERE u.id IS NULL") == 0
        assert count(conn, "SELECT count(DISTINCT (user_id, group_id)) FROM pins") == 10
        capped = SyntheticGenerator(schema, small)
        rows = seed_database(conn, capped).rows
        assert rows["public.pins"] == 6  # every pair once
        assert capped.capped["public.pins"][0] == 6
        assert count(conn, "SELECT count(DISTINCT (user_id, group_id)) FROM pins") == 6


def test_a_unique_set_over_an_enum_a_flag_or_a_day_takes_distinct_combinations(
    pg_server: PgServer,
) -> None:
    """``UNIQUE (account_id, role)`` over an enum failed the seed ("cannot make unique
    member_role values"), and ``PRIMARY KEY (user_id, day)`` repeated pairs at 100 000 rows."""
    ddl = """
        CREATE TYPE member_role AS ENUM ('owner', 'admin', 'member');
        CREATE TABLE accounts (id serial PRIMARY KEY);
        CREATE TABLE account_roles (
            id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts,
            role member_role NOT NULL, UNIQUE (account_id, role)
        );
        CREATE TABLE settings (
            account_id int NOT NULL REFERENCES accounts, enabled boolean NOT NULL,
            kind text NOT NULL, UNIQUE (account_id, enabled)
        );
        CREATE TABLE daily_stats (
            account_id int NOT NULL REFERENCES accounts, day date NOT NULL,
            PRIMARY KEY (account_id, day)
        );
        CREATE TABLE badges (
            account_id int REFERENCES accounts, role member_role, label text,
            UNIQUE (account_id, role, label)
        );
    """
    config = SyntheticConfig(
        2500,
        rows={"accounts": 1000, "account_roles": 5000},
        overrides={"settings": {"enabled": ColumnOverride(values=("true",))}},
    )
    with database_of(pg_server, "synthetic_finite_sets", ddl) as (conn, schema):
        badges = schema.table("public.badges")  # the text carries it, never the enum
        assert (must_be_unique(badges, "role"), must_be_unique(badges, "label")) == (False, True)
        generator = SyntheticGenerator(schema, config)
        rows = seed_database(conn, generator).rows
        assert count(conn, "SELECT count(DISTINCT label) FROM badges") == rows["public.badges"]
        assert rows["public.account_roles"] == 3000  # every account with each role once
        assert "role values" in generator.capped["public.account_roles"][1]
        assert count(conn, "SELECT count(DISTINCT (account_id, role)) FROM account_roles") == 3000
        assert rows["public.settings"] == 1000  # the recipe's one value: one row an account
        assert count(conn, "SELECT count(*) FROM settings WHERE enabled") == 1000
        assert rows["public.daily_stats"] == 2500
        assert count(conn, "SELECT count(DISTINCT (account_id, day)) FROM daily_stats") == 2500
        span = "SELECT min(day) >= '2021-01-01' AND max(day) < '2026-01-01' FROM daily_stats"
        assert conn.execute(span).fetchone() == (True,)


def test_no_two_columns_share_a_digest_or_a_password_but_names_are_shared() -> None:
    """A seeded password digest equal to a blob's checksum made the anonymised copy of the
    seeded data fail its leak check (the same pool fed both); real data does not do that."""
    rng = random.Random(3)
    digest = Column("encrypted_password", "varchar", Category.TEXT, nullable=False)
    checksum = Column("checksum", "varchar", Category.TEXT, nullable=False)
    first = set(values.generate(digest, 500, rng, 0, unique=False, table="users"))
    second = set(values.generate(checksum, 500, rng, 0, unique=False, table="blobs"))
    assert first
    assert not first & second
    again = set(values.generate(digest, 500, random.Random(3), 0, unique=False, table="users"))
    assert again == first  # same seed, same data
    city = Column("city", "text", Category.TEXT, nullable=False)
    home = set(values.generate(city, 500, rng, 0, unique=False, table="users"))
    assert home & set(values.generate(city, 500, rng, 0, unique=False, table="offices"))


def test_prose_and_tokens_are_never_shared_between_columns_or_providers() -> None:
    """A seeded bio equal to a post's body, a one-sentence paragraph equal to a title, a
    reset token drawn from the words an ``abilities`` column had: each failed the leak
    check of an anonymised copy of seeded data (Prisma's and Laravel's starter schemas)."""
    rng = random.Random(5)
    text = lambda name: Column(name, "text", Category.TEXT, nullable=False)  # noqa: E731
    bios = set(values.generate(text("bio"), 1000, rng, 0, unique=False, table="profiles"))
    bodies = set(values.generate(text("content"), 1000, rng, 0, unique=False, table="posts"))
    titles = set(values.generate(text("title"), 1000, rng, 0, unique=False, table="posts"))
    assert bios
    assert not bios & bodies
    assert not (bios | bodies) & titles
    assert set(values.faker_pool("sentence")).isdisjoint(values.faker_pool("paragraph"))
    token = Column("token", "varchar(64)", Category.TEXT, nullable=False, max_length=64)
    drawn = values.generate(token, 5000, rng, 0, unique=True, table="password_resets")
    assert len(set(drawn)) == 5000
    assert all(len(t) == 64 and set(t) <= set("0123456789abcdef") for t in drawn)
    short = Column("token", "varchar(10)", Category.TEXT, nullable=False, max_length=10)
    assert len(set(values.generate(short, 5000, rng, 0, unique=True, table="t"))) == 5000


def test_a_unique_date_or_timestamp_gets_distinct_values_past_the_pool() -> None:
    """Five years of dates and random seconds repeated under a unique constraint."""
    rng = random.Random(1)
    day = Column("day", "date", Category.DATE, nullable=False)
    assert len(set(values.generate(day, 3000, rng, 0, unique=True))) == 3000
    at = Column("at", "timestamp with time zone", Category.TIMESTAMPTZ, nullable=False)
    assert len(set(values.generate(at, 200_000, rng, 0, unique=True))) == 200_000
    assert len(set(values.generate(day, 3000, rng, 0, unique=False))) <= 5 * 365


@pytest.mark.parametrize(
    ("name", "length", "provider"),
    [
        ("currency", 3, "currency_code"),
        ("colour", None, "hex_color"),
        ("brand_color", None, "hex_color"),
        ("slug", None, "slug"),
        ("timezone", None, "timezone"),
        ("country", 2, "country_code"),
        ("filename", None, "file_name"),
        ("content_type", None, "mime_type"),
        ("encrypted_password", None, "sha256"),
        ("password", None, "password"),
        ("uid", None, "sha256"),
        ("ProviderKey", None, "sha256"),
        ("session_data", None, "sha256"),
        ("ssn", None, "ssn"),
        ("iban", None, "iban"),
    ],
)
def test_more_column_names_get_values_of_their_meaning(
    name: str, length: int | None, provider: str
) -> None:
    column = Column(name, "text", Category.TEXT, True, max_length=length)
    assert text_provider(column) == provider


@pytest.mark.parametrize(
    ("table", "provider"),
    [("customers", "name"), ("vendors", "company"), ("projects", "catch_phrase"),
     ("product_categories", "catch_phrase"), ("widgets", "name")],
)  # fmt: skip
def test_a_bare_name_means_what_its_table_holds(table: str, provider: str) -> None:
    """Before, every ``name`` was a person's: a project called "Whitney Stark"."""
    column = Column("name", "character varying", Category.TEXT, False)
    assert text_provider(column, table) == provider


def test_a_domain_says_what_a_column_holds_when_its_name_does_not() -> None:
    """``mail email`` (CREATE DOMAIN email AS citext): before, words, then pattern noise."""
    mail = Column("mail", "email", Category.TEXT, True, type_ref="public.email",
                  base_ref="public.citext")  # fmt: skip
    assert text_provider(mail) == "email"
    vague = Column("x", "short_text", Category.TEXT, True, type_ref="public.short_text",
                   base_ref="pg_catalog.text")  # fmt: skip
    assert text_provider(vague) == "word"
    contact = Column("contact", "email", Category.TEXT, True, type_ref="public.email",
                     base_ref="public.citext")  # fmt: skip
    assert guess(contact, []) == PiiGuess("contact", "type", "email")  # seed inspect too


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("status", 0, 3), ("priority", 0, 3), ("lock_version", 0, 5), ("sign_in_count", 0, 100),
     ("sort_order", 0, 100), ("age", 18, 90), ("page_views", 0, 100_000),
     ("percentage", 0, 100_000), ("account_number", 0, 100_000)],
)  # fmt: skip
def test_an_integer_column_gets_numbers_of_its_meaning(name: str, low: int, high: int) -> None:
    """Before, ``status`` drew up to 999 (no state a Rails enum maps) and ``page_views`` and
    ``percentage`` were ages, matched inside another word."""
    column = Column(name, "integer", Category.INTEGER, False, base_type="int4")
    drawn = [int(v) for v in values.integers(column, 2000, random.Random(1), False)]
    assert low <= min(drawn)
    assert max(drawn) <= high
    assert max(drawn) > (low + high) / 2  # the range is used, not one corner of it


def test_a_flag_most_rows_have_is_mostly_set() -> None:
    def share(name: str) -> float:
        column = Column(name, "boolean", Category.BOOLEAN, False)
        drawn = values.generate(column, 2000, random.Random(2), 0, unique=False)
        return drawn.count("t") / len(drawn)

    assert 0.75 < share("active") < 0.85
    assert 0.75 < share("email_confirmed") < 0.85
    assert 0.45 < share("newsletter") < 0.55


def test_json_documents_are_never_shared_between_columns() -> None:
    """Every JSON column drew from one pool of documents: an anonymised copy of a seeded
    Supabase project found a kept ``metadata`` document among a nulled one's originals."""
    rng = random.Random(3)
    doc = lambda name: Column(name, "jsonb", Category.JSON, nullable=False)  # noqa: E731
    objects = set(values.generate(doc("metadata"), 1000, rng, 0, unique=False, table="objects"))
    buckets = set(values.generate(doc("metadata"), 1000, rng, 0, unique=False, table="buckets"))
    factors = set(values.generate(doc("credential"), 1000, rng, 0, unique=False, table="f"))
    assert objects
    assert not objects & buckets
    assert not (objects | buckets) & factors


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_unique_sets_that_share_a_column_all_hold(pg_server: PgServer, seed: int) -> None:
    """pretix's question answers: four UNIQUE (x_id, question_id) beside each other.

    The first set drew each row's question; the others were filled as plain
    references, and (order_id, question_id) repeated: the rebuild of its index
    rolled the whole seed back, whatever --rows and --seed.
    """
    url = pg_server.create_database(f"shared_unique_{seed}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE orders (id serial PRIMARY KEY);
            CREATE TABLE positions (id serial PRIMARY KEY, order_id int REFERENCES orders);
            CREATE TABLE carts (id serial PRIMARY KEY);
            CREATE TABLE questions (id serial PRIMARY KEY, text text);
            CREATE TABLE answers (
                id serial PRIMARY KEY,
                orderposition_id int REFERENCES positions,
                cartposition_id int REFERENCES carts,
                order_id int REFERENCES orders,
                question_id int NOT NULL REFERENCES questions,
                answer text,
                UNIQUE (orderposition_id, question_id), UNIQUE (cartposition_id, question_id),
                UNIQUE (order_id, question_id), UNIQUE (answer, question_id)
            );
        """)
        schema = introspect(conn)
        config = SyntheticConfig(default_rows=500, seed=seed)
        seed_database(conn, SyntheticGenerator(schema, config))
        for column in ("orderposition_id", "cartposition_id", "order_id"):
            repeated = conn.execute(
                f"SELECT count(*) FROM (SELECT {column}, question_id FROM answers"
                f" WHERE {column} IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) AS r"
            ).fetchone()
            named = conn.execute(f"SELECT count({column}) FROM answers").fetchone()
            assert repeated == (0,), column
            assert named is not None
            assert named[0] > 250, f"{column}: most rows name a parent, not NULL"
