"""Dates that follow each other as their names say; narrow foreign keys; rare events blank."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seeders.schema import meanings
from seeders.schema.model import Category, Column
from seeders.synthetic import date_order
from seeders.synthetic.generator import SyntheticConfig, SyntheticGenerator, holds, seed_database
from seeders.synthetic.values import CannotGenerate
from tests.pg_server import PgServer
from tests.seeders.test_synthetic import count, database_of


def _col(name: str, category: Category = Category.TIMESTAMPTZ, nullable: bool = True) -> Column:
    return Column(name, category.value, category, nullable)


def test_names_are_read_as_steps_of_one_sequence() -> None:
    columns = [
        _col("created_at"), _col("updatedAt"), _col("deleted_at"),  # one sequence, any casing
        _col("trial_starts_at"), _col("trial_ends_at"),  # context "trial"
        _col("starts_at"),  # no end in its own context
        _col("rental_date", Category.DATE), _col("return_date", Category.DATE),
        _col("end_date", Category.DATE),  # a date: not the timestamp starts_at's end
        _col("shipped_on", Category.INTEGER),  # not a date or time
    ]  # fmt: skip
    found = {tuple((s, c.name) for s, c in chain) for chain in date_order.chains(columns)}
    assert found == {
        ((0, "created_at"), (1, "updatedAt"), (2, "deleted_at")),
        ((0, "trial_starts_at"), (1, "trial_ends_at")),
        ((0, "rental_date"), (1, "return_date")),
    }
    assert meanings.words("trial_endsAt") == ["trial", "ends", "at"]
    assert date_order.rare(_col("deleted_at"))
    assert not date_order.rare(_col("updated_at"))


def test_later_steps_follow_the_latest_earlier_one_and_blanks_stay() -> None:
    chain = [(0, _col("ordered_at")), (2, _col("shipped_at")), (3, _col("delivered_at"))]
    values = {
        "ordered_at": ["2024-03-01 10:00:00+00:00", "\\N", "2024-05-01 00:00:00+00:00"],
        "shipped_at": ["2023-01-01 00:00:00+00:00", "2024-01-01 00:00:00+00:00", "\\N"],
        "delivered_at": ["2022-01-01 00:00:00+00:00", "2020-01-01 00:00:00+00:00",
                         "2021-01-01 00:00:00+00:00"],
    }  # fmt: skip
    out = date_order.put_in_sequence(chain, values, random.Random(1), "\\N")
    assert set(out) == {"shipped_at", "delivered_at"}
    assert out["shipped_at"][1] == values["shipped_at"][1]  # nothing earlier in that row
    assert out["shipped_at"][2] == "\\N"  # not shipped yet
    for row in range(3):
        ordered = [out.get(n, values[n])[row] for n in ("ordered_at", "shipped_at", "delivered_at")]
        present = [v for v in ordered if v != "\\N"]
        assert present == sorted(present), row  # ISO text of one zone sorts as time does


def test_a_foreign_key_narrower_than_its_key_names_only_rows_it_can_hold() -> None:
    small = Column("city_id", "smallint", Category.INTEGER, False, base_type="int2")
    assert holds(small, "32767")
    assert not holds(small, "32768")
    code = Column("code", "character varying(2)", Category.TEXT, False, max_length=2)
    assert not holds(code, "abc")


def test_a_seed_reads_the_schema_as_pagila_is_written(pg_server: PgServer) -> None:
    """Before: a smallint naming the 40 000th city failed the COPY; returns preceded rentals."""
    ddl = """
        CREATE TABLE city (city_id serial PRIMARY KEY, city varchar(50) NOT NULL);
        CREATE TABLE address (address_id serial PRIMARY KEY,
            city_id smallint NOT NULL REFERENCES city);
        CREATE TABLE rental (rental_id serial PRIMARY KEY,
            address_id smallint NOT NULL REFERENCES address,
            rental_date timestamp NOT NULL, return_date timestamp,
            created_at timestamptz NOT NULL, updated_at timestamptz, deleted_at timestamptz,
            archived boolean NOT NULL, is_deleted boolean);
    """
    with database_of(pg_server, "synthetic_pagila_like", ddl) as (conn, schema):
        rows = {"city": 40000, "address": 40000, "rental": 3000}
        seed_database(conn, SyntheticGenerator(schema, SyntheticConfig(rows=rows, seed=2)))
        assert count(conn, "SELECT count(*) FROM address") == 40000
        assert count(conn, "SELECT max(city_id) FROM address") <= 32767
        assert count(conn, "SELECT count(DISTINCT city_id) FROM address") > 15000
        assert count(conn, "SELECT count(*) FROM rental WHERE return_date < rental_date") == 0
        assert count(conn, "SELECT count(return_date) FROM rental") > 2500  # a tenth blank
        assert count(conn, "SELECT count(*) FROM rental WHERE updated_at < created_at") == 0
        assert count(conn, "SELECT count(*) FROM rental WHERE deleted_at < updated_at") == 0
        deleted = count(conn, "SELECT count(deleted_at) FROM rental")
        assert 150 < deleted < 500  # most rows are not soft-deleted
        for flag in ("archived", "is_deleted"):  # nor flagged as such
            flagged = count(conn, f"SELECT count(*) FROM rental WHERE {flag}")
            assert 150 < flagged < 500, flag


def test_a_foreign_key_that_can_hold_no_parent_key_is_refused_with_the_fix(
    pg_server: PgServer,
) -> None:
    ddl = """
        CREATE TABLE tag (code varchar(12) PRIMARY KEY);
        CREATE TABLE short_tag (id int PRIMARY KEY, code varchar(2) NOT NULL REFERENCES tag);
        INSERT INTO tag VALUES ('kept');
    """
    with database_of(pg_server, "synthetic_narrow_text_key", ddl) as (conn, schema):
        with pytest.raises(CannotGenerate, match=r"short_tag\.code cannot hold the key .*widen"):
            seed_database(conn, SyntheticGenerator(schema, SyntheticConfig(default_rows=20)))
        assert count(conn, "SELECT count(*) FROM tag WHERE code = 'kept'") == 1  # intact


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 3 * 365 * 86400)), min_size=3, max_size=3),
        min_size=1,
        max_size=40,
    ),
    st.lists(st.integers(0, 3), min_size=3, max_size=3),
)
def test_any_chain_comes_out_in_order_with_its_blanks_and_first_step_kept(
    rows: list[list[int | None]], steps: list[int]
) -> None:
    """Whatever the values and steps (two columns may share one), each row follows the steps."""
    names = ("a_at", "b_at", "c_at")
    chain = sorted(((s, _col(n)) for s, n in zip(steps, names, strict=True)), key=lambda x: x[0])
    base = datetime(2024, 1, 1, tzinfo=UTC)
    values = {
        n: ["\\N" if r[k] is None else (base + timedelta(seconds=r[k])).isoformat(sep=" ")
            for r in rows]
        for k, n in enumerate(names)
    }  # fmt: skip
    out = date_order.put_in_sequence(chain, values, random.Random(0), "\\N")
    first = chain[0][0]
    for step, column in chain:
        if step == first:
            assert column.name not in out  # the generator's own values stay
    for i in range(len(rows)):
        seen: dict[int, list[datetime]] = {}
        for step, column in chain:
            text = out.get(column.name, values[column.name])[i]
            assert (text == "\\N") == (values[column.name][i] == "\\N")  # a blank stays blank
            if text != "\\N":
                seen.setdefault(step, []).append(datetime.fromisoformat(text))
        # Every later step follows the latest value of the steps before it in that row
        # (a step with no value in the row keeps its own, for want of an earlier one).
        for earlier, later in itertools.pairwise([seen[s] for s in sorted(seen)]):
            assert min(later) >= max(earlier)


def test_a_step_of_two_sequences_is_ordered_by_one_and_anchors_the_other(
    pg_server: PgServer,
) -> None:
    """``delivered_at`` follows ``shipped_at``; ``read_at`` then follows it, not a new one."""
    ddl = """
        CREATE TABLE parcels (id int PRIMARY KEY, ordered_at timestamptz NOT NULL,
            shipped_at timestamptz NOT NULL, delivered_at timestamptz NOT NULL,
            sent_at timestamptz NOT NULL, read_at timestamptz NOT NULL);
    """
    with database_of(pg_server, "synthetic_two_sequences", ddl) as (conn, schema):
        seed_database(conn, SyntheticGenerator(schema, SyntheticConfig(default_rows=500)))
        broken = """SELECT count(*) FROM parcels WHERE NOT (ordered_at <= shipped_at
            AND shipped_at <= delivered_at AND delivered_at <= read_at)"""
        assert count(conn, broken) == 0
