"""Columns of PostgreSQL's other built-in types: values of the type, or NULL and said so."""

from __future__ import annotations

import pytest

from seeders.schema.fields import field_checks
from seeders.schema.model import Category, Check, Column
from seeders.synthetic import checks
from seeders.synthetic.generator import SyntheticConfig, SyntheticGenerator, seed_database
from seeders.synthetic.typed import POOLS
from seeders.synthetic.values import CannotGenerate, escape, record_literal
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


COMPOSITES = """
    CREATE TYPE address AS (street text, city varchar(12), postcode text, country char(2));
    CREATE TYPE contact AS (full_name text, email text, home address, since date);
    CREATE DOMAIN shipping AS address CHECK ((VALUE).city IS NOT NULL);
    CREATE TABLE people (
        id serial PRIMARY KEY, home address NOT NULL, work address, contact contact NOT NULL,
        past address[] NOT NULL, ships shipping NOT NULL
    );
"""


def test_composite_columns_get_a_value_in_every_field_by_its_name(pg_server: PgServer) -> None:
    """Before, a column of a composite type was left NULL, or refused the seed if NOT NULL."""
    with database_of(pg_server, "synthetic_composites", COMPOSITES) as (conn, schema):
        people = schema.table("people")
        home, contact = people.column("home"), people.column("contact")
        assert [f.name for f in home.fields] == ["street", "city", "postcode", "country"]
        assert [f.name for f in contact.fields[2].fields] == [f.name for f in home.fields]
        assert people.column("past").fields == people.column("ships").fields == home.fields
        generator = SyntheticGenerator(schema, SyntheticConfig(default_rows=400))
        seed_database(conn, generator)
        assert generator.nulled == []
        for field in ("(home).street", "(home).city", "(ships).postcode", "((contact).home).city"):
            assert count(conn, f"SELECT count(*) FROM people WHERE {field} IS NULL") == 0
            assert count(conn, f"SELECT count(DISTINCT {field}) FROM people") > 50
        assert count(conn, "SELECT max(length((home).city)) FROM people") <= 12
        assert count(conn, "SELECT min(length((home).country)) FROM people") == 2
        assert count(conn, "SELECT count(*) FROM people WHERE (contact).email !~ '@'") == 0
        assert count(conn, "SELECT count(DISTINCT (contact).since) FROM people") > 50
        assert count(conn, "SELECT min(cardinality(past)) FROM people") >= 1
        assert count(conn, "SELECT count(*) FROM people, unnest(past) p WHERE p.city IS NULL") == 0


def test_a_composite_with_a_field_of_no_known_type_is_left_null_or_refused(
    pg_server: PgServer,
) -> None:
    ddl = """
        CREATE TYPE lot AS (label text, area box);
        CREATE TABLE plots (id int PRIMARY KEY, kept lot, needed lot NOT NULL);
    """
    refused = pytest.raises(CannotGenerate, match=r"public\.plots\.needed \(lot\); give each")
    with database_of(pg_server, "synthetic_unknown_composite", ddl) as (_, schema), refused:
        SyntheticGenerator(schema, SyntheticConfig(default_rows=10))


def test_a_row_literal_reads_back_field_for_field(pg_server: PgServer) -> None:
    """A comma, quote, backslash, parenthesis, space or tab in a field is that field's own."""
    fields = ["a,b", 'say "hi"', "back\\slash", "(paren)", "  spaced ", "", "tab\there", "ünï"]
    bag = ", ".join(f"f{i} text" for i in range(len(fields)))
    ddl = f"CREATE TYPE bag AS ({bag}); CREATE TABLE t (v bag)"
    with database_of(pg_server, "synthetic_row_literal", ddl) as (conn, _):
        with conn.cursor().copy("COPY t FROM STDIN") as copy:
            copy.write(escape(record_literal(fields)) + "\n")
        assert conn.execute("SELECT (v).* FROM t").fetchone() == tuple(fields)


FIELD_CHECKED = """
    CREATE TYPE address AS (street text, city text, postcode text, "Floor" int);
    CREATE DOMAIN coded AS address CHECK ((VALUE).postcode ~ '^[A-Z]{2}[0-9]{3}$');
    CREATE TABLE sites (
        id serial PRIMARY KEY, home address NOT NULL, office coded NOT NULL,
        CHECK ((home).postcode ~ '^[0-9]{4}-[a-z]{2}$'), CHECK ((home)."Floor" BETWEEN 1 AND 3),
        CHECK (length((home).city) < 12 OR (home)."Floor" = 1)
    );
"""


def test_checks_on_fields_of_a_composite_fit_each_field(pg_server: PgServer) -> None:
    """Before, no invented address passed a pattern on its postcode: the seed was refused."""
    with database_of(pg_server, "synthetic_field_checks", FIELD_CHECKED) as (conn, schema):
        generator = SyntheticGenerator(schema, checks.fit(conn, schema, SyntheticConfig(400)))
        seed_database(conn, generator)  # every row passed every check, the server says
        assert count(conn, "SELECT count(DISTINCT home) FROM sites") > 200
        assert count(conn, "SELECT count(DISTINCT (office).postcode) FROM sites") > 200
        assert count(conn, 'SELECT count(DISTINCT (home)."Floor") FROM sites') == 3


def test_a_check_of_one_field_is_read_as_that_field_s_alone() -> None:
    sites = Column("home", "address", Category.OTHER, False, fields=(
        Column("postcode", "text", Category.TEXT, True),
        Column("Floor", "integer", Category.INTEGER, True),
        Column("home", "text", Category.TEXT, True),
    ))  # fmt: skip
    found = field_checks(sites, [
        Check("a", "CHECK (((home).postcode ~ '^(home).x$'::text))", ("home",)),
        Check("b", 'CHECK ((((home)."Floor" >= 1) AND ((home)."Floor" <= 3)))', ("home",)),
        Check("c", "CHECK (((home).postcode <> (home).home))", ("home",)),
        Check("d", "CHECK (((home IS NOT NULL) AND ((home).home <> ''::text)))", ("home",)),
        Check("e", "CHECK ((length(((home).home)::text) > 2))", ("home",)),
    ])  # fmt: skip
    assert found == {
        "postcode": [Check("a", "CHECK ((\"postcode\" ~ '^(home).x$'::text))", ("postcode",))],
        "Floor": [Check("b", 'CHECK ((("Floor" >= 1) AND ("Floor" <= 3)))', ("Floor",))],
        "home": [Check("e", 'CHECK ((length(("home")::text) > 2))', ("home",))],
    }
