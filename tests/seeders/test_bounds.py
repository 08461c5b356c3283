"""The ranges read from CHECK constraints as the server writes them (pg_get_constraintdef)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from seeders.anonymise import bounds
from seeders.schema.model import Category, Check, Column

D = Decimal


@pytest.mark.parametrize(
    ("name", "category", "written", "expected"),
    [
        ("a", Category.INTEGER, "CHECK (((a >= 1) AND (a <= 5)))", (D(1), D(5))),
        ("b", Category.NUMERIC, "CHECK (((b >= (0)::numeric) AND (b <= (100)::numeric)))",
         (D(0), D(100))),
        ("b", Category.NUMERIC, "CHECK ((b > (0)::numeric))", (D("0.01"), None)),
        ("c", Category.FLOAT, "CHECK ((c > (0.5)::double precision))",
         (D("0.5000000000000001"), None)),
        ("d", Category.INTEGER, "CHECK (('-5'::integer < d))", (D(-4), None)),
        ("e", Category.NUMERIC, "CHECK ((e >= '-10.5'::numeric))", (D("-10.5"), None)),
        ("g", Category.INTEGER, "CHECK (((g)::numeric >= 0.5))", (D(1), None)),
        ("h", Category.INTEGER, "CHECK ((h <= (100)::bigint))", (None, D(100))),
        ("Mixed", Category.INTEGER, 'CHECK (("Mixed" < 10))', (None, D(9))),
        # What is not a plain comparison of the column with a number adds no bound.
        ("f", Category.INTEGER, "CHECK (((f > 0) OR (f IS NULL)))", (None, None)),
        ("f", Category.INTEGER, "CHECK (((f % 2) = 0))", (None, None)),
        ("f", Category.INTEGER, "CHECK ((f > other))", (None, None)),
        ("f", Category.INTEGER, "CHECK (((f >= 0) AND (f <> 3)))", (D(0), None)),
        ("t", Category.TEXT, "CHECK ((t > 'a'::text))", (None, None)),
    ],
)  # fmt: skip
def test_bounds_of_a_columns_checks(
    name: str, category: Category, written: str, expected: bounds.Bounds
) -> None:
    column = Column(name, "x", category, True)
    assert bounds.of(column, [Check("c", written)], scale=2) == expected


def test_several_checks_give_the_narrowest_range() -> None:
    column = Column("n", "integer", Category.INTEGER, True)
    checks = [Check("a", "CHECK ((n >= 0))"), Check("b", "CHECK (((n > 2) AND (n < 50)))")]
    assert bounds.of(column, checks) == (D(3), D(49))


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("CHECK ((born <= CURRENT_DATE))", (("<=", "CURRENT_DATE"),)),
        ("CHECK (((born >= '1900-01-01'::date) AND (born <= CURRENT_DATE)))",
         ((">=", "'1900-01-01'::date"), ("<=", "CURRENT_DATE"))),
        ("CHECK ((born <= now()))", (("<=", "now()"),)),
        ("CHECK (('2000-01-01 00:00:00+00'::timestamp with time zone < born))",
         ((">", "'2000-01-01 00:00:00+00'::timestamp with time zone"),)),
        ("CHECK ((born > other))", ()),
        ("CHECK (((born <= CURRENT_DATE) OR (born IS NULL)))", ()),
    ],
)  # fmt: skip
def test_time_bounds_of_a_columns_checks(written: str, expected: tuple[bounds.TimeBound]) -> None:
    column = Column("born", "date", Category.DATE, True)
    assert bounds.of_time(column, [Check("c", written)]) == expected
