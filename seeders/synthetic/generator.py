"""Synthetic rows for a whole schema: keys first, then every column, in COPY text.

Keys (primary keys and every column another table references) are planned
for all tables before any other value, in foreign-key order; a foreign key
then picks a *parent row* and copies that row's referenced columns, so
composite keys stay consistent and every reference exists. Composite keys
made only of foreign keys are drawn without replacement from the product of
their parents, so they are unique by construction.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from seeders.copy.loader import LoadReport, Progress, load
from seeders.schema.graph import load_order
from seeders.schema.model import INTEGER_BITS, Category, Check, Column, ForeignKey, Schema, Table
from seeders.synthetic import date_order, polymorphic, repair
from seeders.synthetic.typed import RANGES
from seeders.synthetic.values import (
    NULL,
    CannotGenerate,
    Values,
    can_invent,
    date_pool,
    escape,
    faker_pool,
    generate,
    is_faker_provider,
    mixed_seed,
    unescape,
    with_nulls,
)


@dataclass(frozen=True)
class ColumnOverride:
    """From the seed config: a Faker provider name or a fixed set of values."""

    provider: str | None = None
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SyntheticConfig:
    default_rows: int = 1000
    rows: Mapping[str, int] = field(default_factory=dict)  # table → rows
    scale: float = 1.0
    seed: int = 0
    overrides: Mapping[str, Mapping[str, ColumnOverride]] = field(default_factory=dict)
    # table → column → the only values the server accepts there: a partition key's
    # (seeders.synthetic.partitions), a column under a CHECK (seeders.synthetic.checks)
    accepted_values: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    # (table, column) pairs a CHECK keeps from NULL though the column allows it
    never_null: frozenset[tuple[str, str]] = frozenset()
    # Tables left as the target has them (seeders.synthetic.left): none of their rows is written.
    left: frozenset[str] = frozenset()
    # table → referenced column → its values in the rows the target has (aligned by row):
    # what a written table's foreign key into a left table picks from.
    left_keys: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def rows_for(self, table: Table) -> int:
        """The rows to write: none in a left table."""
        if table.qualified in self.left:
            return 0
        explicit = self.rows.get(table.qualified, self.rows.get(table.name))
        base = self.default_rows if explicit is None else explicit
        return max(0, round(base * self.scale))


@dataclass
class TablePlan:
    table: Table
    rows: int
    keys: dict[str, Values] = field(default_factory=dict)  # column → values, planned first


def _rng(seed: int, *parts: str) -> random.Random:
    return random.Random(mixed_seed(seed, *parts))


def _referenced_columns(schema: Schema) -> dict[str, set[str]]:
    referenced: dict[str, set[str]] = {t.qualified: set() for t in schema.tables}
    for table in schema.tables:
        for fk in table.foreign_keys:
            referenced.setdefault(fk.ref_table, set()).update(fk.ref_columns)
    return referenced


def must_be_unique(table: Table, column: str) -> bool:
    """Unique alone, or the first plain column of a multi-column unique set.

    Making that one column unique makes the whole combination unique. A
    partition key, or a polymorphic reference (:mod:`seeders.synthetic.polymorphic`),
    is passed over where another column can carry it: its values are bound
    to the partitions' or to the rows it names. Under an exclusion constraint, its
    range columns are made disjoint (no two rows overlap, whatever the
    rest), or if it has none, its first plain column unique.
    """
    if table.is_unique(column):
        return True
    for excluded in table.exclusions:
        ranges = [c for c in excluded if table.column(c).base_type in RANGES]
        plain = [c for c in excluded if _fk_for(table, c) is None]
        if column in ranges or (not ranges and plain and plain[0] == column):
            return True
    # A polymorphic pair names existing rows, so it cannot also carry uniqueness.
    pointing = {name for pair in polymorphic.pairs(table) for name in pair}
    for columns in (*table.unique, table.primary_key):
        plain = [c for c in columns if _fk_for(table, c) is None]
        plain = [c for c in plain if c not in table.partition_key] or plain
        plain = [c for c in plain if c not in pointing] or plain
        # An enum, a flag or a date has too few values to carry a set's uniqueness.
        plain = [c for c in plain if finite_values(table.column(c)) is None]
        if len(columns) > 1 and plain and plain[0] == column:
            return True
    return False


def finite_values(column: Column) -> tuple[str, ...] | None:
    """The few values a column takes, as COPY text, or None for a type of many.

    Every value of an enum or a flag; for a date, the seeder's own five
    years (``UNIQUE (user_id, day)`` takes pairs of a user and a day of
    those, not a day centuries away for each row).
    """
    if column.is_array:
        return None
    if column.category is Category.ENUM:
        return tuple(escape(label) for label in column.enum_values)
    if column.category is Category.BOOLEAN:
        return ("t", "f")
    if column.category is Category.DATE:
        return tuple(date_pool())
    return None


@dataclass(frozen=True)
class Combined:
    """A key or unique set no one column can carry: its rows take distinct combinations.

    A join table's ``UNIQUE (user_id, group_id)`` (beside an ``id`` of its
    own, as Django and Rails make them), a key of references alone, or
    ``UNIQUE (account_id, role)`` over an enum: each row names another
    combination of parent rows and of the enum's (a flag's, a date's) values.
    """

    references: tuple[ForeignKey, ...]
    finite: tuple[str, ...]  # columns of few values: an enum's, a flag's, a date's


def combined_sets(table: Table) -> list[Combined]:
    """The table's key and unique sets that only combinations keep unique.

    A set with a column that can carry it alone (:func:`must_be_unique`)
    is not one; nor is a set referencing its own table (its parents are
    the rows being planned).
    """
    found: list[Combined] = []
    for columns in (table.primary_key, *table.unique):
        if len(columns) < 2:
            continue
        fks = tuple(fk for fk in table.foreign_keys if set(fk.columns) <= set(columns))
        covered = {c for fk in fks for c in fk.columns}
        rest = tuple(c for c in columns if c not in covered)
        if any(finite_values(table.column(c)) is None for c in rest):
            continue
        if any(fk.ref_table == table.qualified for fk in fks):
            continue
        found.append(Combined(fks, rest))
    return found


# ``CHECK ((ends_at >= starts_at))`` as the server writes it: two columns compared.
_IDENT = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
_COLUMN_ORDER = re.compile(rf"^CHECK \(\((?P<a>{_IDENT}) (?P<op><=|>=|<|>) (?P<b>{_IDENT})\)\)$")
_ORDERABLE = (Category.INTEGER, Category.NUMERIC, Category.FLOAT, Category.DATE, Category.TIMESTAMP,
              Category.TIMESTAMPTZ)  # fmt: skip


def _unquoted(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def column_order(table: Table, check: Check) -> tuple[str, str, str] | None:
    """(low, "<" or "<=", high) for a check that orders two columns of one kind, else None."""
    match = _COLUMN_ORDER.match(check.expression)
    if match is None:
        return None
    a, b, op = _unquoted(match["a"]), _unquoted(match["b"]), match["op"]
    names = {c.name: c for c in table.columns if c.writable and not c.is_array}
    if a not in names or b not in names or a == b:
        return None
    if names[a].category not in _ORDERABLE or names[a].category is not names[b].category:
        return None
    return (a, op, b) if op.startswith("<") else (b, op.replace(">", "<"), a)


def _sort_key(category: Category, value: str) -> tuple[Decimal, str]:
    """Numbers by value; dates and times by their ISO text, which sorts as they do."""
    if category in (Category.INTEGER, Category.NUMERIC, Category.FLOAT):
        return Decimal(value), ""
    return Decimal(0), value


def _put_in_order(table: Table, out: dict[str, Values], low: str, op: str, high: str) -> None:
    """Swap the two columns' values in each row that breaks the check.

    Both values stay ones their own columns would hold; a strict check
    whose two values are equal gets a NULL where a column allows one.
    """
    category = table.column(low).category
    # Where a strict check's equal pair gets its NULL, if anywhere.
    blank = high if table.column(high).nullable else low if table.column(low).nullable else None
    lows, highs = list(out[low]), list(out[high])
    for i, (x, y) in enumerate(zip(lows, highs, strict=True)):
        if NULL in (x, y):
            continue
        kx, ky = _sort_key(category, x), _sort_key(category, y)
        if kx > ky:
            lows[i], highs[i] = y, x
        elif kx == ky and op == "<" and blank is not None:
            (highs if blank == high else lows)[i] = NULL
    out[low], out[high] = lows, highs


def holds(column: Column, value: str) -> bool:
    """Whether a parent's key value fits the referencing column (pure).

    A foreign key may be narrower than what it references (pagila's
    ``smallint`` columns point at ``integer`` keys): the 40 000th city
    exists, but no ``smallint`` can name it.
    """
    if value == NULL or column.is_array:
        return True
    bits = INTEGER_BITS.get(column.base_type)
    if column.category is Category.INTEGER and bits is not None:
        return -(1 << (bits - 1)) <= int(value) < 1 << (bits - 1)
    if column.category is Category.TEXT and column.max_length is not None:
        return len(unescape(value)) <= column.max_length
    return True


def narrower(child: Column, parent: Column) -> bool:
    """Whether some value of ``parent`` may not fit ``child`` (pure; see :func:`holds`)."""
    if child.category is Category.INTEGER and child.base_type in INTEGER_BITS:
        return INTEGER_BITS[child.base_type] < INTEGER_BITS.get(parent.base_type, 64)
    if child.category is Category.TEXT and child.max_length is not None:
        return parent.max_length is None or child.max_length < parent.max_length
    return False


def _holdable(child: Column, parent: Column, keys: Values, rows: Sequence[int]) -> Sequence[int]:
    """Of ``rows``, those whose key in ``keys`` the child column can hold (all, if as wide)."""
    if not narrower(child, parent):
        return rows
    return [i for i in rows if holds(child, keys[i])]


def _fk_for(table: Table, column: str) -> ForeignKey | None:
    return next((fk for fk in table.foreign_keys if column in fk.columns), None)


class SyntheticGenerator:
    """Plans keys for a schema, then yields each table's rows in COPY chunks."""

    def __init__(self, schema: Schema, config: SyntheticConfig) -> None:
        self.schema = schema
        self.config = config
        self.order = load_order(schema)
        self.plans: dict[str, TablePlan] = {}
        # table → (rows, why): tables that get fewer rows than asked, and the key that caps them
        self.capped: dict[str, tuple[int, str]] = {}
        referenced = _referenced_columns(schema)
        # (table, column) of the types the seeder has no values of: written NULL.
        self.nulled_columns = self._uninvented(referenced)
        for name in self.order.tables:
            table = schema.table(name)
            if name in config.left:  # its keys are the rows the target already has
                keys = {c: list(v) for c, v in config.left_keys.get(name, {}).items()}
                rows = len(next(iter(keys.values()), ()))
                self.plans[name] = TablePlan(table, rows, keys)
                continue
            self._check_overrides(table)
            plan = TablePlan(table, config.rows_for(table))
            self.plans[name] = plan
            self._plan_keys(plan, referenced[name])

    def _uninvented(self, referenced: Mapping[str, set[str]]) -> list[tuple[str, str]]:
        """The columns of types the seeder has no values of, which it leaves NULL.

        Each needs values in the recipe instead; one that is NOT NULL (or a
        key) is refused here, all of them in one message, before writing.
        """
        nulled: list[tuple[str, str]] = []
        refused: list[str] = []
        for name in self.order.tables:
            table = self.schema.table(name)
            if self.config.rows_for(table) == 0:
                continue
            overrides = self.config.overrides.get(table.name, {})
            fitted = self.config.accepted_values.get(table.qualified, {})
            for column in self.columns(table):
                if can_invent(column) or column.name in overrides or column.name in fitted:
                    continue
                if _fk_for(table, column.name) is not None:
                    continue  # a foreign key's values are its parent's
                key = column.name in table.primary_key or column.name in referenced[name]
                if key or not column.nullable:
                    refused.append(f"{table.qualified}.{column.name} ({column.type_name})")
                else:
                    nulled.append((table.qualified, column.name))
        if refused:
            raise CannotGenerate(
                "the synthetic seeder has no values of these columns' types: "
                + ", ".join(refused)
                + "; give each values in the recipe (tables: {TABLE: {columns: {COLUMN:"
                " {values: [...]}}}})"
            )
        return nulled

    @property
    def nulled(self) -> list[str]:
        """The columns written NULL, as the summary names them: ``public.t.c (box)``."""
        return [
            f"{t}.{c} ({self.schema.table(t).column(c).type_name})" for t, c in self.nulled_columns
        ]

    @property
    def written(self) -> list[str]:
        """The tables the seed writes, in load order: all but the left ones."""
        return [name for name in self.order.tables if name not in self.config.left]

    # -- planning ----------------------------------------------------------------

    def _check_overrides(self, table: Table) -> None:
        for column, override in self.config.overrides.get(table.name, {}).items():
            table.column(column)  # KeyError names the table and column
            if override.provider and not is_faker_provider(override.provider):
                raise CannotGenerate(
                    f"{table.qualified}.{column}: {override.provider!r} is not a Faker provider"
                )

    def _plan_keys(self, plan: TablePlan, referenced: set[str]) -> None:
        table = plan.table
        key_columns = set(table.primary_key) | referenced
        composite = len(table.primary_key) > 1
        for combined in combined_sets(table):
            columns = {c for fk in combined.references for c in fk.columns} | set(combined.finite)
            if columns & set(plan.keys):
                # Another set (or a cycle's first pass) planned part of it: the rest must
                # keep this set's combinations distinct too.
                self._plan_rest(plan, combined)
                continue
            domains = [self._domain(table, c) for c in combined.finite]
            if all(domains) and self._parents_planned(combined.references):
                self._plan_combinations(plan, combined, [d for d in domains if d])
        for name in sorted(key_columns - set(plan.keys)):
            column = table.column(name)
            fk = _fk_for(table, name)
            if fk is not None and fk.ref_table in self.plans and fk.ref_table != table.qualified:
                continue  # filled from the parent row with the rest of the FK below
            unique = must_be_unique(table, name) or name in referenced or not composite
            plan.keys[name] = self._values(table, column, plan.rows, unique)
        for fk in table.foreign_keys:
            if set(fk.columns) & key_columns and not set(fk.columns) <= set(plan.keys):
                self._fill_fk(plan, fk)

    def _cap(self, plan: TablePlan, rows: int, why: str) -> None:
        """Fewer rows for ``plan``'s table than asked, and why (said in the run's summary)."""
        plan.rows = rows
        self.capped[plan.table.qualified] = (rows, why)

    def _parents(self, table: Table, fk: ForeignKey) -> Sequence[int]:
        """The parent rows ``fk`` can name: those whose key its columns can hold."""
        parent = self.plans[fk.ref_table]
        referenced = self.schema.table(fk.ref_table)
        rows: Sequence[int] = range(parent.rows)
        for column, ref in zip(fk.columns, fk.ref_columns, strict=True):
            rows = _holdable(table.column(column), referenced.column(ref), parent.keys[ref], rows)
        if not rows and parent.rows:
            numbers = all(table.column(c).category is Category.INTEGER for c in fk.columns)
            way = (
                f"give {fk.ref_table} fewer rows"
                if numbers
                else f"leave {fk.ref_table} as the target has it (with keys that fit)"
            )
            raise CannotGenerate(
                f"{table.qualified}.{','.join(fk.columns)} cannot hold the key of any row of"
                f" {fk.ref_table} (the column is narrower than the key it references); widen"
                f" the column, or {way}"
            )
        return rows

    def _parents_planned(self, fks: Sequence[ForeignKey]) -> bool:
        """Whether every parent has rows, their referenced keys planned (now, if need be).

        Without rows there is no combination to draw: ``_fill_fk`` then says
        what to do instead (NULL, or the way out).
        """
        for fk in fks:
            parent = self.plans.get(fk.ref_table)
            if parent is None or parent.rows == 0:
                return False
            self._plan_referenced(parent, fk)
        return True

    def _plan_referenced(self, parent: TablePlan, fk: ForeignKey) -> None:
        """Plan the parent's keys ``fk`` names, if not yet: a cycle edge's parent comes later."""
        if any(ref not in parent.keys for ref in fk.ref_columns):
            self._plan_keys(parent, set(fk.ref_columns))

    def _domain(self, table: Table, column: str) -> tuple[str, ...] | None:
        """The values a combination may give ``column``: the recipe's, a check's, or its type's.

        None where the recipe names a provider: its values are not known here.
        """
        override = self.config.overrides.get(table.name, {}).get(column)
        if override is not None:
            return tuple(dict.fromkeys(map(escape, override.values or ()))) or None
        accepted = self.config.accepted_values.get(table.qualified, {}).get(column)
        if accepted is not None:
            return tuple(dict.fromkeys(accepted))
        return finite_values(table.column(column))

    def _plan_combinations(
        self, plan: TablePlan, combined: Combined, domains: list[tuple[str, ...]]
    ) -> None:
        """Distinct combinations of parent rows and finite values, drawn without repeats."""
        table, fks = plan.table, combined.references
        eligible = [self._parents(table, fk) for fk in fks]
        sizes = [len(rows) for rows in eligible] + [len(d) for d in domains]
        space = math.prod(sizes)
        if space < plan.rows:  # cannot have more distinct combinations than exist
            parts = [f"{' and '.join(fk.ref_table for fk in fks)} rows"] if fks else []
            parts += [f"{c} values" for c in combined.finite]
            self._cap(plan, space, f"every combination of {' and '.join(parts)} once")
        rng = self._column_rng(table, "+".join((*(fk.name for fk in fks), *combined.finite)))
        picks = rng.sample(range(space), plan.rows) if space else []

        def digits(position: int) -> list[int]:
            radix = math.prod(sizes[position + 1 :])
            return [(p // radix) % sizes[position] for p in picks]

        for position, fk in enumerate(fks):
            rows = eligible[position]
            self._copy_parent(plan, fk, [rows[d] for d in digits(position)])
        for offset, (column, domain) in enumerate(zip(combined.finite, domains, strict=True)):
            plan.keys[column] = [domain[d] for d in digits(len(fks) + offset)]

    def _plan_rest(self, plan: TablePlan, combined: Combined) -> None:
        """Complete a set another set planned in part: distinct within each planned group.

        ``UNIQUE (orderposition_id, question_id)`` beside ``UNIQUE (order_id,
        question_id)``: the first set drew the question of every row, so each
        question's rows draw distinct orders. Where a group has more rows than
        there are choices, the rest take NULL (never equal under UNIQUE) if the
        columns allow it.
        """
        table = plan.table
        fks = [fk for fk in combined.references if not set(fk.columns) & set(plan.keys)]
        if any(
            set(fk.columns) & set(plan.keys) and not set(fk.columns) <= set(plan.keys)
            for fk in combined.references
        ):
            return  # a reference planned in part: not a combination this can complete
        finite = [c for c in combined.finite if c not in plan.keys]
        domains = [self._domain(table, c) for c in finite]
        if (not fks and not finite) or not all(domains) or not self._parents_planned(fks):
            return
        planned = sorted(
            c for c in {c for fk in combined.references for c in fk.columns} | set(combined.finite)
            if c in plan.keys
        )  # fmt: skip
        eligible = [self._parents(table, fk) for fk in fks]
        sizes = [len(rows) for rows in eligible] + [len(d or ()) for d in domains]
        space = math.prod(sizes)
        groups: dict[tuple[str, ...], list[int]] = {}
        for row in range(plan.rows):
            groups.setdefault(tuple(plan.keys[c][row] for c in planned), []).append(row)
        rng = self._column_rng(table, "rest:" + "+".join((*(fk.name for fk in fks), *finite)))
        picks: list[int | None] = [None] * plan.rows
        for members in groups.values():
            drawn = rng.sample(range(space), min(space, len(members)))
            for row, pick in zip(members, drawn, strict=False):  # the rest stay None: NULL
                picks[row] = pick
        open_columns = [c for fk in fks for c in fk.columns] + finite
        if None in picks and not all(table.column(c).nullable for c in open_columns):
            raise CannotGenerate(
                f"{table.qualified} ({', '.join(open_columns)}): more rows share"
                f" {', '.join(planned)} than there are distinct values to pair them with;"
                " ask for fewer rows of it, or more rows of its parents"
            )

        def digit(pick: int | None, position: int) -> int | None:
            if pick is None:
                return None
            return (pick // math.prod(sizes[position + 1 :])) % sizes[position]

        for position, fk in enumerate(fks):
            parent = self.plans[fk.ref_table]
            rows = eligible[position]
            for column, ref in zip(fk.columns, fk.ref_columns, strict=True):
                source = parent.keys[ref]
                plan.keys[column] = [
                    NULL if (d := digit(p, position)) is None else source[rows[d]] for p in picks
                ]
        for offset, (column, domain) in enumerate(zip(finite, domains, strict=True)):
            assert domain is not None
            plan.keys[column] = [
                NULL if (d := digit(p, len(fks) + offset)) is None else domain[d] for p in picks
            ]

    def _copy_parent(self, plan: TablePlan, fk: ForeignKey, indices: list[int]) -> None:
        parent = self.plans[fk.ref_table]
        for column, ref in zip(fk.columns, fk.ref_columns, strict=True):
            source = parent.keys[ref]
            plan.keys[column] = [source[i] for i in indices]

    def _fill_fk(self, plan: TablePlan, fk: ForeignKey) -> None:
        table = plan.table
        rng = self._column_rng(table, fk.name)
        if plan.rows == 0:
            for column in fk.columns:
                plan.keys[column] = []
            return
        if fk.ref_table == table.qualified:
            self._fill_self_reference(plan, fk, rng)
            return
        parent = self.plans.get(fk.ref_table)
        if parent is None or parent.rows == 0:
            self._no_parent(plan, fk)
            return
        self._plan_referenced(parent, fk)
        one_to_one = set(fk.columns) == set(table.primary_key) or tuple(fk.columns) in table.unique
        rows = self._parents(table, fk)
        if one_to_one:  # each parent at most once, or the key repeats
            if len(rows) < plan.rows:
                self._cap(plan, len(rows), f"one per {fk.ref_table} row it can name")
            indices = rng.sample(rows, plan.rows)
        else:
            indices = [rows[rng.randrange(len(rows))] for _ in range(plan.rows)]
        self._copy_parent(plan, fk, indices)
        if all(table.column(c).nullable for c in fk.columns):
            nulls = with_nulls(["x"] * plan.rows, rng, 0.05)
            for column in fk.columns:
                plan.keys[column] = [
                    NULL if m == NULL else v for v, m in zip(plan.keys[column], nulls, strict=True)
                ]

    def _no_parent(self, plan: TablePlan, fk: ForeignKey) -> None:
        """A foreign key into a table without rows: NULL where it may be, else refused."""
        table = plan.table
        if all(table.column(c).nullable for c in fk.columns):
            for column in fk.columns:
                plan.keys[column] = [NULL] * plan.rows
            return
        if fk.ref_table in self.config.left:
            raise CannotGenerate(
                f"{table.qualified}.{','.join(fk.columns)} must reference {fk.ref_table},"
                " which keeps the target's rows and has none; load its rows first, or"
                " seed it (give it rows in the recipe instead of 'leave')"
            )
        raise CannotGenerate(
            f"{table.qualified}.{','.join(fk.columns)} must reference {fk.ref_table}, "
            "which gets no rows; give it rows in the seed config"
        )

    def _fill_self_reference(self, plan: TablePlan, fk: ForeignKey, rng: random.Random) -> None:
        """Rows point at earlier rows (a tree); the first row, or a nullable key, has none."""
        own = [plan.keys[ref] for ref in fk.ref_columns]
        nullable = all(plan.table.column(c).nullable for c in fk.columns)
        for position, column in enumerate(fk.columns):
            values: Values = []
            for i in range(plan.rows):
                if i == 0 or (nullable and rng.random() < 0.3):
                    values.append(NULL if nullable else own[position][i])
                else:
                    values.append(own[position][rng.randrange(i)])
            plan.keys[column] = values

    def _values(self, table: Table, column: Column, n: int, unique: bool) -> Values:
        """A key column's values; a partition key's from those its partitions accept."""
        rng = self._column_rng(table, column.name)
        fitting = self.config.accepted_values.get(table.qualified, {}).get(column.name)
        if fitting is None:
            return generate(column, n, rng, self.config.seed, unique, table.name)
        if unique:  # fitted to be unique and enough (seeders.synthetic.partitions)
            return list(fitting[:n])
        return rng.choices(fitting, k=n)

    def _column_rng(self, table: Table, column: str) -> random.Random:
        return _rng(self.config.seed, table.qualified, column)

    # -- rows ------------------------------------------------------------------

    def columns(self, table: Table) -> list[Column]:
        """Columns written by COPY (generated columns are computed by the server)."""
        return [c for c in table.columns if c.writable]

    def column_values(self, plan: TablePlan) -> list[Values]:
        table = plan.table
        n = plan.rows
        out: dict[str, Values] = {}
        for fk in table.foreign_keys:
            if not set(fk.columns) <= set(plan.keys):
                self._fill_fk(plan, fk)
        for column in self.columns(table):
            if column.name in plan.keys:
                out[column.name] = plan.keys[column.name]
            elif (table.qualified, column.name) in self.nulled_columns:
                out[column.name] = [NULL] * n
            else:
                out[column.name] = self._plain(table, column, n)
        self._point_polymorphic(table, out, plan)
        self._follow_names(table, out, plan)
        for check in table.checks:
            ordered = column_order(table, check)
            if ordered is not None and not {ordered[0], ordered[2]} & set(plan.keys):
                _put_in_order(table, out, *ordered)
        return [out[c.name] for c in self.columns(table)]

    def _plain(self, table: Table, column: Column, n: int) -> Values:
        """A column's values that no key decides: the recipe's, a check's, or invented."""
        rng = self._column_rng(table, column.name)
        override = self.config.overrides.get(table.name, {}).get(column.name)
        unique = must_be_unique(table, column.name)
        if column.name in self.config.accepted_values.get(table.qualified, {}):
            values = self._values(table, column, n, unique)
        elif override is not None and override.values is not None:
            values = rng.choices([escape(v) for v in override.values], k=n)
        elif override is not None and override.provider is not None:
            values = rng.choices(faker_pool(override.provider, self.config.seed), k=n)
        else:
            values = generate(column, n, rng, self.config.seed, unique, table.name)
        blanks = (table.qualified, column.name) not in self.config.never_null
        if column.nullable and blanks and not unique and column.name not in table.partition_key:
            share = date_order.blank_share(column) if override is None else 0.1
            values = with_nulls(values, rng, share)
        return values

    def _point_polymorphic(self, table: Table, out: dict[str, Values], plan: TablePlan) -> None:
        """Each ``x_type`` / ``x_id`` pair names a row that exists (seeders.synthetic.polymorphic).

        Not where a recipe, a key or a partition decides either column; a
        pair keeps its blanks together (both or neither).
        """
        fixed = {*plan.keys, *self.config.overrides.get(table.name, {}), *table.partition_key}
        accepted = self.config.accepted_values.get(table.qualified, {})
        for type_name, id_name in polymorphic.pairs(table):
            if {type_name, id_name} & fixed or id_name in accepted:
                continue
            if must_be_unique(table, type_name) or must_be_unique(table, id_name):
                continue
            kind, key = table.column(type_name), table.column(id_name)
            allowed = accepted.get(type_name)
            choices = []
            for value, parent in polymorphic.targets(
                self._keyed_tables(key), [unescape(v) for v in allowed] if allowed else None
            ):
                pk = parent.primary_key[0]
                keys = self.plans[parent.qualified].keys[pk]
                rows = _holdable(key, parent.column(pk), keys, range(len(keys)))
                if rows and holds(kind, escape(value)):
                    choices.append((escape(value), keys, rows))
            if not choices:
                continue
            rng = self._column_rng(table, f"{type_name}+{id_name}")
            both_blank = kind.nullable and key.nullable
            types, ids = list(out[type_name]), list(out[id_name])
            for i in range(plan.rows):
                if both_blank and NULL in (types[i], ids[i]):
                    types[i] = ids[i] = NULL
                    continue
                value, keys, rows = choices[rng.randrange(len(choices))]
                types[i], ids[i] = value, keys[rows[rng.randrange(len(rows))]]
            out[type_name], out[id_name] = types, ids

    def _keyed_tables(self, key: Column) -> list[Table]:
        """Tables with rows and a one-column primary key of the same kind as ``key``."""
        found = []
        for plan in self.plans.values():
            pk = plan.table.primary_key
            if len(pk) != 1 or not plan.rows or pk[0] not in plan.keys:
                continue
            if plan.table.column(pk[0]).category is key.category:
                found.append(plan.table)
        return found

    def _follow_names(self, table: Table, out: dict[str, Values], plan: TablePlan) -> None:
        """Dates and times in the order their names say (:mod:`seeders.synthetic.date_order`).

        Only columns whose values are the generator's own are rewritten: not
        keys, recipe values, or values a check or a partition bound chose.
        """
        fixed = {
            *plan.keys,
            *self.config.overrides.get(table.name, {}),
            *self.config.accepted_values.get(table.qualified, {}),
            *table.partition_key,
        }
        for chain in date_order.chains(self.columns(table)):
            first = chain[0][0]
            kept = {c.name for _, c in chain if c.name in fixed or must_be_unique(table, c.name)}
            if all(c.name in kept for step, c in chain if step != first):
                continue
            rng = self._column_rng(table, "+".join(c.name for _, c in chain))
            written = date_order.put_in_sequence(chain, out, rng, NULL, kept)
            out.update(written)
            fixed |= set(written)  # a step of two sequences (delivered) is ordered by the first

    def copy_chunks(self, table_name: str, chunk_rows: int = 20_000) -> Iterator[tuple[int, bytes]]:
        """(rows, bytes) chunks of one table in COPY text format."""
        plan = self.plans[table_name]
        columns = self.column_values(plan)
        if not columns:
            return
        for start in range(0, plan.rows, chunk_rows):
            end = min(start + chunk_rows, plan.rows)
            rows = zip(*(col[start:end] for col in columns), strict=True)
            text = "\n".join("\t".join(row) for row in rows) + "\n"
            yield end - start, text.encode()


def seed_database(
    conn: psycopg.Connection[Any],
    generator: SyntheticGenerator,
    progress: Progress | None = None,
) -> LoadReport:
    """Replace every table's rows with the generator's (one transaction, see loader).

    Checks over several columns a repair can satisfy are relaxed while the
    rows load, and the rows that break them repaired (:mod:`seeders.synthetic.repair`).
    """
    schema, never_null = generator.schema, generator.config.never_null
    ordered = lambda table, check: column_order(table, check) is not None  # noqa: E731
    relaxed = repair.relaxed(schema, generator.written, ordered, never_null)
    return load(
        conn,
        schema,
        generator.written,
        lambda table: [c.name for c in generator.columns(table)],
        generator.copy_chunks,
        progress,
        relaxed=relaxed,
        repair=lambda c: repair.repair(c, schema, relaxed, never_null),
    )
