"""Synthetic rows under the CHECK constraints application schemas carry."""

from __future__ import annotations

import pytest

from seeders import checks, partitions
from seeders.introspect import domain_check
from seeders.schema import Category, Check, Column
from seeders.synthetic import ColumnOverride, SyntheticConfig, SyntheticGenerator, seed_database
from seeders.values import CannotGenerate
from tests.pg_server import PgServer
from tests.seeders.test_synthetic import count, database_of

SHOP = """
    CREATE TABLE products (
      id bigserial PRIMARY KEY,
      name text NOT NULL,
      price numeric(10,2) NOT NULL CHECK (price >= 0),
      rating integer CHECK (rating BETWEEN 1 AND 5),
      discount integer NOT NULL DEFAULT 0 CHECK (discount >= 0 AND discount <= 100),
      kind text NOT NULL CHECK (kind IN ('book', 'toy', 'food')),
      size varchar(2) CHECK (size IN ('S', 'M', 'L', 'XL')),
      even integer CHECK (even IS NOT NULL AND even % 2 = 0),
      share numeric(5,2) CHECK (share > 0.5 AND share < 99.5),
      score real CHECK (score BETWEEN 0 AND 1),
      code text UNIQUE CHECK (length(code) BETWEEN 3 AND 12),
      "Since" date CHECK ("Since" >= '1990-01-01' AND "Since" < '1990-03-01'),
      starts_at date NOT NULL,
      ends_at date NOT NULL,
      opened_at timestamptz,
      closed_at timestamptz,
      low integer,
      high integer,
      CHECK (ends_at >= starts_at),
      CHECK (opened_at < closed_at),
      CHECK (low < high)
    );
"""


def test_every_row_passes_the_tables_checks(pg_server: PgServer) -> None:
    """Before, the first row broke one of these and the whole seed was rolled back."""
    with database_of(pg_server, "synthetic_checks", SHOP) as (conn, schema):
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=2000, seed=7))
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(*) FROM products") == 2000
        # Still varied within what the checks allow, not one safe value.
        assert count(conn, "SELECT count(DISTINCT rating) FROM products") == 5
        assert count(conn, "SELECT count(DISTINCT discount) FROM products") > 50
        assert count(conn, "SELECT count(DISTINCT kind) FROM products") == 3
        assert count(conn, "SELECT count(DISTINCT size) FROM products") == 4
        assert count(conn, "SELECT count(DISTINCT share) FROM products") > 50
        assert count(conn, 'SELECT count(DISTINCT "Since") FROM products') > 30
        # NULL passes "rating BETWEEN 1 AND 5" (gaps stay), not "even IS NOT NULL".
        assert count(conn, "SELECT count(*) FROM products WHERE rating IS NULL") > 0
        assert count(conn, "SELECT count(*) FROM products WHERE even IS NULL") == 0
        assert count(conn, "SELECT count(*) FROM products WHERE low < high") > 1500
        assert count(conn, "SELECT count(*) FROM products WHERE ends_at > starts_at") > 1500


def test_a_check_no_value_passes_is_refused_before_writing(pg_server: PgServer) -> None:
    ddl = """
        CREATE TABLE codes (id int PRIMARY KEY, code text NOT NULL CHECK (code ~ '^[0-9]{5}$'));
        INSERT INTO codes VALUES (1, '12345');
    """
    with database_of(pg_server, "synthetic_checks_refused", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"public\.codes\.code: 0 of .*codes_code_check"):
            checks.fit(conn, schema, SyntheticConfig(default_rows=10))
        assert count(conn, "SELECT count(*) FROM codes") == 1  # nothing written
        # The fix the message gives: values in the recipe (those that pass are kept).
        override = {"codes": {"code": ColumnOverride(values=("01234", "x", "98765"))}}
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=10, overrides=override))
        assert config.accepted_values["public.codes"]["code"] == ("01234", "98765")
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT code) FROM codes") == 2


def test_a_unique_column_needs_as_many_values_as_rows(pg_server: PgServer) -> None:
    ddl = "CREATE TABLE seats (n smallint PRIMARY KEY CHECK (n BETWEEN 1 AND 40));"
    with database_of(pg_server, "synthetic_checks_unique", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"public\.seats\.n: 40 of .* 41 needed"):
            checks.fit(conn, schema, SyntheticConfig(default_rows=41))
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=40))
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT n) FROM seats WHERE n BETWEEN 1 AND 40") == 40


def test_a_partition_key_under_a_check_passes_both(pg_server: PgServer) -> None:
    ddl = """
        CREATE TABLE events (at date NOT NULL CHECK (at <> '2024-01-03'), kind text)
          PARTITION BY RANGE (at);
        CREATE TABLE events_w1 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-01-08');
        CREATE TABLE tags (label text CHECK (label <> '50%'))
          PARTITION BY LIST (label);
        CREATE TABLE tags_a PARTITION OF tags FOR VALUES IN ('50%', '10%', 'a%b');
    """
    with database_of(pg_server, "synthetic_checks_partitions", ddl) as (conn, schema):
        config = partitions.fit(conn, schema, SyntheticConfig(default_rows=100))
        config = checks.fit(conn, schema, config)
        assert "2024-01-03" not in config.accepted_values["public.events"]["at"]
        assert set(config.accepted_values["public.tags"]["label"]) == {"10%", "a%b"}
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT at) FROM events") == 6


def test_a_domains_checks_hold_in_every_column_of_the_domain(pg_server: PgServer) -> None:
    """Before, a smallint domain got values past 32767 and the load failed on the first row."""
    ddl = """
        CREATE DOMAIN stars AS smallint CHECK (VALUE BETWEEN 1 AND 5);
        CREATE DOMAIN percent AS numeric(5,2) NOT NULL CHECK (VALUE >= 0) CHECK (VALUE <= 100);
        CREATE DOMAIN sku AS text CHECK (VALUE ~ '^[A-Z]{3}-[0-9]{4}$');
        CREATE DOMAIN few_stars AS stars NOT NULL CHECK (VALUE <= 3);  -- a domain's domain
        CREATE DOMAIN tag AS varchar(3);
        CREATE DOMAIN label AS tag;
        CREATE TABLE reviews (id serial PRIMARY KEY, given stars, median stars NOT NULL,
                              discount percent, item sku, low few_stars, mark label);
    """
    with database_of(pg_server, "synthetic_checks_domains", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"reviews\.item: 0 of .*sku_check \(domain publ"):
            checks.fit(conn, schema, SyntheticConfig(default_rows=500))
        override = {"reviews": {"item": ColumnOverride(values=("ABC-1234", "abc", "XYZ-0001"))}}
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=500, overrides=override))
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT given) FROM reviews") == 5
        assert count(conn, "SELECT count(*) FROM reviews WHERE given IS NULL") > 0
        assert count(conn, "SELECT count(DISTINCT median) FROM reviews") == 5
        assert count(conn, "SELECT count(DISTINCT discount) FROM reviews") > 50
        assert count(conn, "SELECT count(DISTINCT item) FROM reviews") == 2
        # Every level of a domain over a domain: its checks, NOT NULL and typmod.
        assert count(conn, "SELECT count(DISTINCT low) FROM reviews WHERE low BETWEEN 1 AND 3") == 3
        assert count(conn, "SELECT max(length(mark)) FROM reviews") <= 3
        assert not schema.table("reviews").column("low").nullable


def test_a_domain_check_reads_its_value_as_the_column() -> None:
    """Pure: VALUE is replaced where it is the keyword, not inside a literal or a quoted name."""
    definition = "CHECK (((VALUE <> 'VALUE'::text) AND (\"VALUE\" IS NULL OR VALUE > ''::text)))"
    column = '"my ""col"""'
    expected = (
        f"CHECK ((({column} <> 'VALUE'::text) AND (\"VALUE\" IS NULL OR {column} > ''::text)))"
    )
    assert domain_check(definition, 'my "col"') == expected


def test_candidates_come_from_the_checks_literals() -> None:
    """Pure: the numbers and dates a range's ends suggest, inside the column's type."""
    rating = Column("rating", "smallint", Category.INTEGER, True, base_type="int2")
    between = Check("c", "CHECK (((rating >= 1) AND (rating <= 5)))", ("rating",))
    found = checks.literal_candidates(rating, [between])
    assert {"1", "2", "3", "4", "5"} <= set(found)
    assert all(-(2**15) <= int(v) < 2**15 for v in found)
    money = Column("share", "numeric(5,2)", Category.NUMERIC, True, numeric_precision=5,
                   numeric_scale=2)  # fmt: skip
    lone = Check("c", "CHECK ((share > 0.5))", ("share",))
    found = checks.literal_candidates(money, [lone])
    assert {"0.50", "1.50"} <= set(found)
    assert all(abs(float(v)) < 1000 for v in found)
    day = Column("at", "date", Category.DATE, True)
    found = checks.literal_candidates(day, [Check("c", "CHECK ((at >= '1990-01-01'::date))")])
    assert {"1990-01-01", "1989-12-31"} <= set(found)
    label = Column("size", "character varying(2)", Category.TEXT, True, max_length=2)
    listed = Check("c", "CHECK (((size)::text = ANY (ARRAY['S'::text, 'XL'::text, 'XXL'::text])))")
    assert checks.literal_candidates(label, [listed]) == ["S", "XL"]
