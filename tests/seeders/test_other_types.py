"""Columns of PostgreSQL's other built-in types: values of the type, or NULL and said so."""

from __future__ import annotations

import pytest

from seeders.synthetic import SyntheticConfig, SyntheticGenerator, seed_database
from seeders.typed import POOLS
from seeders.values import CannotGenerate
from tests.pg_server import PgServer
from tests.seeders.test_synthetic import count, database_of

PLACES = """
    CREATE EXTENSION hstore;
    CREATE EXTENSION ltree;
    CREATE DOMAIN spot AS point;
    CREATE TABLE places (
        id serial PRIMARY KEY,
        at point NOT NULL, near spot, words tsvector NOT NULL, device macaddr NOT NULL,
        long_device macaddr8, seats int4range NOT NULL, big int8range, prices numrange,
        days daterange NOT NULL, hours tsrange, slot tstzrange NOT NULL, doc xml NOT NULL,
        flags bit(8) NOT NULL, marks varbit(5) NOT NULL, unknown box,
        attributes hstore NOT NULL, path ltree NOT NULL
    );
"""
RANGES = ("seats", "big", "prices", "days", "hours", "slot")


def test_every_pooled_type_is_seeded_with_values_the_server_takes(pg_server: PgServer) -> None:
    """Before, the first such column refused the whole seed ("cannot invent")."""
    with database_of(pg_server, "synthetic_other_types", PLACES) as (conn, schema):
        generator = SyntheticGenerator(schema, SyntheticConfig(default_rows=300))
        seed_database(conn, generator)  # every value parsed by its type's input function
        for column in ("at", "words", "device", "seats", "days", "slot", "doc", "flags", "path"):
            assert count(conn, f"SELECT count(DISTINCT {column}::text) FROM places") > 50
        for column in RANGES:
            assert count(conn, f"SELECT count(*) FROM places WHERE isempty({column})") == 0
            unbounded = f"{column} IS NOT NULL AND lower({column}) IS NULL"
            query = f"SELECT count(*) FROM places WHERE {unbounded}"
            assert count(conn, query) == 0
        assert count(conn, "SELECT min(length(flags)) FROM places") == 8
        assert count(conn, "SELECT max(length(marks)) FROM places") <= 5
        assert count(conn, "SELECT count(DISTINCT attributes -> 'colour') FROM places") > 5
        assert count(conn, "SELECT max(nlevel(path)) FROM places") == 4
        # A type with no pool: NULL where the column allows it, and reported.
        assert count(conn, "SELECT count(unknown) FROM places") == 0
        assert generator.nulled == ["public.places.unknown (box)"]


def test_columns_of_unknown_types_that_need_values_are_refused_together(
    pg_server: PgServer,
) -> None:
    ddl = "CREATE TABLE shapes (id int PRIMARY KEY, a box NOT NULL, b circle NOT NULL, c lseg)"
    with database_of(pg_server, "synthetic_unknown_types", ddl) as (_, schema):
        expected = r"public\.shapes\.a \(box\), public\.shapes\.b \(circle\); give each values"
        with pytest.raises(CannotGenerate, match=expected):
            SyntheticGenerator(schema, SyntheticConfig(default_rows=10))


def test_pools_cover_the_types_the_module_names() -> None:
    assert set(POOLS) >= {"point", "tsvector", "macaddr", "tstzrange", "xml", "bit", "varbit"}


def test_exclusion_constraints_hold_disjoint_ranges_and_distinct_values(
    pg_server: PgServer,
) -> None:
    """Bookings that may not overlap: before, the first overlapping pair failed the seed."""
    ddl = """
        CREATE TABLE bookings (id serial PRIMARY KEY, room int NOT NULL, during tstzrange NOT NULL,
                               days daterange, EXCLUDE USING gist (during WITH &&),
                               EXCLUDE USING gist (days WITH &&));
        CREATE TABLE tickets (id serial PRIMARY KEY, code int NOT NULL, EXCLUDE (code WITH =));
    """
    with database_of(pg_server, "synthetic_exclusions", ddl) as (conn, schema):
        assert set(schema.table("bookings").exclusions) == {("during",), ("days",)}
        seed_database(conn, SyntheticGenerator(schema, SyntheticConfig(default_rows=2000)))
        assert count(conn, "SELECT count(*) FROM bookings") == 2000
        assert count(conn, "SELECT count(DISTINCT code) FROM tickets") == 2000
