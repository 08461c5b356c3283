"""Synthetic rows under the CHECK constraints application schemas carry."""

from __future__ import annotations

import psycopg
import pytest

from seeders.schema.introspect import domain_check, introspect
from seeders.schema.model import Category, Check, Column
from seeders.synthetic import checks, partitions
from seeders.synthetic.generator import (
    ColumnOverride,
    SyntheticConfig,
    SyntheticGenerator,
    seed_database,
)
from seeders.synthetic.values import CannotGenerate
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


PATTERNED = r"""
    CREATE TABLE accounts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      code text NOT NULL UNIQUE CHECK (code ~ '^[A-Z]{3}-[0-9]{4}$'),
      phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
      tag varchar(6) NOT NULL CHECK (tag ~ '^[[:upper:]][[:digit:]]{2,}$'),
      sku text CHECK (sku LIKE 'SKU-%'),
      ref text UNIQUE CHECK (ref SIMILAR TO '[A-Z]{2}(x|y)[0-9]+'),
      pin text UNIQUE CHECK (char_length(pin) = 6),
      label text NOT NULL CHECK (label = upper(label)),
      five text CHECK (five ~ '^[0-9]{5}$')
    );
"""


def test_text_a_pattern_length_or_case_check_allows_is_drawn_from_the_check(
    pg_server: PgServer,
) -> None:
    """Before, invented words passed none of these and each was refused."""
    with database_of(pg_server, "synthetic_checks_patterns", PATTERNED) as (conn, schema):
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=3000, seed=5))
        seed_database(conn, SyntheticGenerator(schema, config))  # the checks held every row
        assert count(conn, "SELECT count(DISTINCT code) FROM accounts") == 3000
        assert count(conn, "SELECT count(DISTINCT ref) FROM accounts") == 3000
        assert count(conn, "SELECT count(DISTINCT pin) FROM accounts") == 3000
        for column in ("phone", "tag", "sku", "label", "five"):
            distinct = count(conn, f"SELECT count(DISTINCT {column}) FROM accounts")
            assert distinct > 100, column  # varied, not the one literal the check names
        # Upper-cased invented values, not text made up from nothing.
        assert count(conn, "SELECT count(*) FROM accounts WHERE label ~ '^[A-Z ]+$'") > 2500
        # Same seed, same text: what a pattern draws is deterministic too.
        again = checks.fit(conn, schema, SyntheticConfig(default_rows=3000, seed=5))
        assert again.accepted_values == config.accepted_values


def test_a_check_that_raises_on_some_values_passes_the_others(pg_server: PgServer) -> None:
    """Before, the cast's error for the first invented word stopped the whole seed."""
    ddl = """
        CREATE TABLE t (id int PRIMARY KEY, num text UNIQUE CHECK (num::integer > 0),
                        items jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array'));
    """
    with database_of(pg_server, "synthetic_checks_raising", ddl) as (conn, schema):
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=2000, seed=3))
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT num) FROM t") == 2000
        assert count(conn, "SELECT count(DISTINCT items) FROM t") > 100


def test_without_temporary_objects_a_raising_check_is_refused_with_the_ways_round(
    pg_server: PgServer,
) -> None:
    ddl = """
        CREATE TABLE t (id int PRIMARY KEY, num text CHECK (num::integer > 0));
        DROP ROLE IF EXISTS no_temp;
        CREATE ROLE no_temp LOGIN;
        GRANT SELECT, INSERT ON t TO no_temp;
    """
    with database_of(pg_server, "synthetic_checks_no_temp", ddl) as (conn, _):
        conn.execute(f"REVOKE TEMPORARY ON DATABASE {conn.info.dbname} FROM PUBLIC")
        limited = pg_server.url(conn.info.dbname).replace("postgres@", "no_temp@")
        with psycopg.connect(limited, autocommit=True) as other:
            schema = introspect(other)
            with pytest.raises(CannotGenerate, match=r"num: .*GRANT TEMPORARY.*values: \[\.\.\.\]"):
                checks.fit(other, schema, SyntheticConfig(default_rows=10))


def test_a_check_no_value_passes_is_refused_before_writing(pg_server: PgServer) -> None:
    ddl = r"""
        CREATE TABLE codes (id int PRIMARY KEY, code text NOT NULL CHECK (code ~ '^(\d)\1{4}$'));
        INSERT INTO codes VALUES (1, '11111');
    """
    with database_of(pg_server, "synthetic_checks_refused", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"public\.codes\.code: 0 of .*codes_code_check"):
            checks.fit(conn, schema, SyntheticConfig(default_rows=10))
        assert count(conn, "SELECT count(*) FROM codes") == 1  # nothing written
        # The fix the message gives: values in the recipe (those that pass are kept).
        override = {"codes": {"code": ColumnOverride(values=("00000", "x", "99999"))}}
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=10, overrides=override))
        assert config.accepted_values["public.codes"]["code"] == ("00000", "99999")
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT code) FROM codes") == 2


@pytest.mark.parametrize(
    ("column", "check"),
    [("n smallint", "n BETWEEN 1 AND 40"), ("n text", "n ~ '^[A-D][0-9]$'")],
    ids=["range", "pattern"],
)
def test_a_unique_column_needs_as_many_values_as_rows(
    pg_server: PgServer, column: str, check: str
) -> None:
    ddl = f"CREATE TABLE seats ({column} PRIMARY KEY CHECK ({check}));"
    with database_of(pg_server, "synthetic_checks_unique", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"public\.seats\.n: 40 of .* 41 needed"):
            checks.fit(conn, schema, SyntheticConfig(default_rows=41))
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=40))
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, f"SELECT count(DISTINCT n) FROM seats WHERE {check}") == 40


def test_a_wanted_count_stops_early_with_the_same_first_values(pg_server: PgServer) -> None:
    ddl = "CREATE TABLE n (v integer CHECK (v % 3 = 0));"
    with database_of(pg_server, "synthetic_checks_wanted", ddl) as (conn, schema):
        column = schema.tables[0].column("v")
        fits = partitions.condition("(v % 3 = 0)")
        candidates = [str(i) for i in range(30_000)]
        every = partitions.passing(conn, column, fits, candidates)
        assert len(every) == 10_000
        first = partitions.passing(conn, column, fits, candidates, wanted=1000)
        assert 1000 <= len(first) < 5000
        assert first == every[: len(first)]


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
    ddl = r"""
        CREATE DOMAIN stars AS smallint CHECK (VALUE BETWEEN 1 AND 5);
        CREATE DOMAIN percent AS numeric(5,2) NOT NULL CHECK (VALUE >= 0) CHECK (VALUE <= 100);
        CREATE DOMAIN sku AS text CHECK (VALUE ~ '^([A-Z])\1{2}-[0-9]{4}$');  -- AAA-0000
        CREATE DOMAIN code AS text CHECK (VALUE ~ '^[A-Z]{3}-[0-9]{4}$');
        CREATE DOMAIN few_stars AS stars NOT NULL CHECK (VALUE <= 3);  -- a domain's domain
        CREATE DOMAIN tag AS varchar(3);
        CREATE DOMAIN label AS tag;
        CREATE TABLE reviews (id serial PRIMARY KEY, given stars, median stars NOT NULL,
                              discount percent, item sku, low few_stars, mark label,
                              kind code);
    """
    with database_of(pg_server, "synthetic_checks_domains", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"reviews\.item: 0 of .*sku_check \(domain publ"):
            checks.fit(conn, schema, SyntheticConfig(default_rows=500))
        override = {"reviews": {"item": ColumnOverride(values=("AAA-1234", "abc", "XXX-0001"))}}
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=500, overrides=override))
        seed_database(conn, SyntheticGenerator(schema, config))
        assert count(conn, "SELECT count(DISTINCT given) FROM reviews") == 5
        assert count(conn, "SELECT count(*) FROM reviews WHERE given IS NULL") > 0
        assert count(conn, "SELECT count(DISTINCT median) FROM reviews") == 5
        assert count(conn, "SELECT count(DISTINCT discount) FROM reviews") > 50
        assert count(conn, "SELECT count(DISTINCT item) FROM reviews") == 2
        assert count(conn, "SELECT count(DISTINCT kind) FROM reviews") > 100  # the pattern's
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
