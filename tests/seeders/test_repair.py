"""Rows under CHECK constraints over several columns: repaired by the server's own verdict."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from seeders.schema.model import Category, Check, Column, ForeignKey, Table
from seeders.synthetic import checks, repair
from seeders.synthetic.generator import SyntheticConfig, SyntheticGenerator, seed_database
from tests.pg_server import PgServer
from tests.seeders.test_synthetic import count, database_of

DOCS = """
    CREATE TABLE users (id serial PRIMARY KEY, email text);
    CREATE TABLE teams (id serial PRIMARY KEY, name text);
    CREATE TABLE docs (
        id serial PRIMARY KEY,
        user_id int REFERENCES users, team_id int REFERENCES teams,
        shipped_at timestamptz, carrier text,
        kind text NOT NULL CHECK (kind IN ('memo', 'letter')), stamp text,
        CONSTRAINT one_owner CHECK (num_nonnulls(user_id, team_id) = 1),
        CONSTRAINT shipped_by CHECK ((shipped_at IS NULL) = (carrier IS NULL)),
        CONSTRAINT letters_stamped CHECK (kind <> 'letter' OR stamp IS NOT NULL),
        CONSTRAINT memos_unstamped CHECK (kind <> 'memo' OR stamp IS NULL)
    );
"""


@contextmanager
def seeded(pg_server: PgServer, name: str, ddl: str, seed: int) -> Iterator[Any]:
    """A database of ``ddl`` seeded with 2 000 rows per table; every check re-validated."""
    with database_of(pg_server, name, ddl) as (conn, schema):
        config = checks.fit(conn, schema, SyntheticConfig(default_rows=2000, seed=seed))
        seed_database(conn, SyntheticGenerator(schema, config))
        yield conn


def test_rows_breaking_checks_over_several_columns_are_repaired(pg_server: PgServer) -> None:
    """Before, nearly every row broke "a user's or a team's" and the seed was rolled back."""
    with seeded(pg_server, "synthetic_repair", DOCS, seed=3) as conn:
        assert count(conn, "SELECT count(*) FROM docs") == 2000
        # Both kinds of owner, not all one: the repairs share the rows out.
        assert count(conn, "SELECT count(user_id) FROM docs") > 700
        assert count(conn, "SELECT count(team_id) FROM docs") > 700
        assert count(conn, "SELECT count(*) FROM docs WHERE shipped_at IS NOT NULL") > 1000
        assert count(conn, "SELECT count(*) FROM docs WHERE kind = 'letter'") > 200
        assert count(conn, "SELECT count(*) FROM docs WHERE kind = 'memo'") > 200


def test_a_borrowed_value_is_one_that_makes_its_own_row_pass(pg_server: PgServer) -> None:
    """Before, every breaking row was offered one row's value, and most stayed broken."""
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, first_name text NOT NULL,
            last_name text NOT NULL, nick text UNIQUE,
            CONSTRAINT short CHECK (char_length(first_name) + char_length(last_name) <= 12));
        CREATE TABLE parcels (id int PRIMARY KEY, width int NOT NULL, height int NOT NULL,
            CONSTRAINT small CHECK (width + height < 2000000));
    """
    with seeded(pg_server, "synthetic_repair_borrowed", ddl, seed=4) as conn:
        assert count(conn, "SELECT count(*) FROM people") == 2000
        # Still varied: rows borrow different values, not the one that fits all.
        assert count(conn, "SELECT count(DISTINCT first_name) FROM people") > 100
        assert count(conn, "SELECT count(DISTINCT (first_name, last_name)) FROM people") > 1500
        assert count(conn, "SELECT count(DISTINCT width + height) FROM parcels") > 1000


def test_a_check_no_repair_satisfies_still_fails_the_seed_naming_it(pg_server: PgServer) -> None:
    ddl = """
        CREATE TABLE spans (id int PRIMARY KEY, a int NOT NULL, b int,
                            CONSTRAINT far_apart CHECK (a > coalesce(b, 0) + 10000000));
        INSERT INTO spans VALUES (1, 20000000, 1);
    """
    with database_of(pg_server, "synthetic_repair_fails", ddl) as (conn, schema):
        generator = SyntheticGenerator(schema, SyntheticConfig(default_rows=50))
        with pytest.raises(Exception, match='check constraint "far_apart"'):
            seed_database(conn, generator)
        conn.rollback()
        assert count(conn, "SELECT count(*) FROM spans") == 1  # rolled back, intact


def test_repairs_change_the_fewest_columns_first() -> None:
    """Pure: one column NULL or borrowed before two; a unique column is never borrowed."""
    a = Column("a", "integer", Category.INTEGER, True)
    b = Column("b", "integer", Category.INTEGER, False)
    groups = repair.repairs([(a, ("null", "borrowed")), (b, ("borrowed",))])
    assert [len(g) for g in groups] == [3, 2]
    assert groups[0][0] == ((a, "null"),)
    assert ((a, "null"), (b, "borrowed")) in groups[1]


def test_rows_only_a_new_value_fixes_are_shrunk_toward_zero(pg_server: PgServer) -> None:
    """Before, no other row's value fitted ``a + b <= 100`` and the seed was rolled back."""
    ddl = """
        CREATE TABLE splits (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL,
            share numeric(6, 2) NOT NULL CHECK (share > 0),
            CONSTRAINT capped CHECK (a + b <= 100),
            CONSTRAINT weighted CHECK (a * share <= 20000));
    """
    with seeded(pg_server, "synthetic_repair_shrunk", ddl, seed=5) as conn:
        assert count(conn, "SELECT count(*) FROM splits") == 2000
        # The rows keep their own proportions, not one value that fits all.
        assert count(conn, "SELECT count(DISTINCT (a, b)) FROM splits") > 500
        assert count(conn, "SELECT count(*) FROM splits WHERE a + b > 50") > 200
        assert count(conn, "SELECT count(DISTINCT share) FROM splits") > 500


def test_a_repair_keeps_the_tables_other_checks(pg_server: PgServer) -> None:
    """Before, ends_at borrowed to shorten a span fell before starts_at: a raw violation."""
    ddl = """
        CREATE TABLE bookings (id int PRIMARY KEY,
            starts_at timestamptz NOT NULL, ends_at timestamptz NOT NULL,
            CONSTRAINT ordered CHECK (starts_at < ends_at),
            CONSTRAINT within_a_week CHECK (ends_at - starts_at <= interval '7 days'));
        CREATE TABLE leaves (id int PRIMARY KEY, first_day date NOT NULL, last_day date NOT NULL,
            CONSTRAINT in_order CHECK (first_day <= last_day),
            CONSTRAINT short CHECK (last_day - first_day <= 3));
    """
    with seeded(pg_server, "synthetic_repair_guards", ddl, seed=6) as conn:
        spans = "SELECT count(DISTINCT ends_at - starts_at) FROM bookings"
        assert count(conn, spans) > 1500
        assert count(conn, "SELECT count(*) FROM bookings WHERE ends_at <= starts_at") == 0
        assert count(conn, "SELECT count(DISTINCT last_day - first_day) FROM leaves") == 4


def test_only_plain_numbers_and_dates_with_a_partner_are_shrunk() -> None:
    """Pure: a foreign key's value might not exist shrunk; a lone date has nothing to move to."""
    ints = [Column(n, "integer", Category.INTEGER, False) for n in ("a", "owner_id")]
    day = Column("day", "date", Category.DATE, False)
    table = Table(
        "public", "t", (*ints, day),
        foreign_keys=(ForeignKey("t_owner", ("owner_id",), "public.owners", ("id",)),),
    )  # fmt: skip
    check = Check("c", "CHECK ((a + owner_id) < 10)", ("a", "owner_id"))
    ways = {column.name: w for column, w in repair._changeable(table, check, ())}
    assert ways == {"a": ("borrowed", "shrunk"), "owner_id": ("borrowed",)}
    lone = Check("d", "CHECK ((day > '2020-01-01'::date OR a > 0))", ("day", "a"))
    ways = {column.name: w for column, w in repair._changeable(table, lone, ())}
    assert ways == {"day": ("borrowed",), "a": ("borrowed", "shrunk")}


def test_a_check_no_repair_satisfies_is_found_on_a_sample_and_the_trial_is_undone(
    pg_server: PgServer,
) -> None:
    """Before, every repair searched every breaking row first: 20 s for 100 000, then failed."""
    ddl = """
        CREATE TABLE spans (id int PRIMARY KEY, a int NOT NULL, b int);
        INSERT INTO spans SELECT g, g % 1000, g % 7 FROM generate_series(1, 5000) g;
    """
    far = Check("far_apart", "CHECK ((a > (COALESCE(b, 0) + 10000000)))", ("a", "b"))
    near = Check("near", "CHECK (((a + COALESCE(b, 0)) <= 100))", ("a", "b"))
    with database_of(pg_server, "synthetic_repair_hopeless", ddl) as (conn, schema):
        sums = "SELECT sum(a) * 10000 + sum(coalesce(b, 0)) FROM spans"
        before = count(conn, sums)
        for check, hopeless in ((far, True), (near, False)):
            table = dataclasses.replace(schema.table("public.spans"), checks=(check,))
            groups = repair.repairs(repair._changeable(table, check, ()))
            assert repair._hopeless(conn, table, check, groups) is hopeless, check.name
        assert count(conn, sums) == before  # tried on the sample, then rolled back
