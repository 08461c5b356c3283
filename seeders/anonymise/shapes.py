"""What each copied column's values must fit: its target's limits, and its key family's. Pure.

A transform's output is shaped by the column it lands in: a uniqueness tag
when the column is unique, a width it is cut to, the integer range a
pseudonym stays in, the digits a noised amount keeps. The source column is
the wrong guide to those in two cases that real databases are full of:

- The pull request's migration narrowed the column (``varchar(100)`` to
  ``varchar(50)``, ``bigint`` to ``integer``, ``numeric(12, 2)`` to
  ``numeric(8, 2)``) or made it unique: a transform's output must fit the
  target, or the load fails on its first long row.
- A foreign key of another type than the key it references (an ``integer``
  column referencing a ``bigint`` key, left behind when the key was
  widened; ``text`` referencing ``varchar(10)``; any referencing column,
  which is not unique, referencing a unique one): a value's pseudonym must
  be the same on both sides, or the copy's joins break. So every column of
  a key family (columns joined by foreign keys, transitively) takes the
  narrowest limits of any of them, and a tag when any of them is unique.

Values copied as they are (``keep``) cannot be made to fit; for those, and
for a key family's wider columns, :func:`overflows` says which rows would
not fit, so that a run can count them before it writes anything. Those
conditions are this module's own SQL (identifiers, widths, ranges, labels),
never text read from the target: the target is the pull request's, and an
expression of its (a CHECK that calls ``query_to_xml``) evaluated on the
source would read the source for it. What the target's own checks refuse
is for the target to say, as the rows load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from psycopg import sql

from seeders.anonymise import bounds
from seeders.anonymise.rules import MIN_HASH_WIDTH, Rules
from seeders.schema.graph import Key, families
from seeders.schema.model import Category, Column, Schema, Table, bits_of

# Integer types by their (or their domain's base) type: bits.
_INTEGER_NAMES = {16: "smallint", 32: "integer", 64: "bigint"}


@dataclass(frozen=True)
class Shape:
    """The limits a column's transformed values must keep (None: no limit)."""

    unique: bool = False
    max_length: int | None = None
    bits: int | None = None  # an integer column's: its type's, or its key family's narrowest
    digits: int | None = None  # a numeric column's digits before the point
    scale: int | None = None  # and after it
    # The range its CHECK constraints keep a number in, inclusive (seeders.anonymise.bounds).
    low: Decimal | None = None
    high: Decimal | None = None
    # The comparisons with a fixed or current date its CHECK constraints hold a date to.
    times: tuple[bounds.TimeBound, ...] = ()
    # A fake rule's pool, as far as the target column's checks accept it (seeders.anonymise.fakes);
    # None: the provider's whole pool.
    fakes: tuple[str, ...] | None = None
    # A unique fake's characters, position by position, under the target's pattern
    # check (seeders.anonymise.fakes): its pseudonyms are built from the MAC's bytes to match.
    pattern: tuple[str, ...] | None = None

    def narrowed(self, other: Shape) -> Shape:
        lows = [b for b in (self.low, other.low) if b is not None]
        highs = [b for b in (self.high, other.high) if b is not None]
        return Shape(
            self.unique or other.unique,
            _least(self.max_length, other.max_length),
            _least(self.bits, other.bits),
            _least(self.digits, other.digits),
            _least(self.scale, other.scale),
            max(lows) if lows else None,
            min(highs) if highs else None,
            tuple(dict.fromkeys((*self.times, *other.times))),
        )

    @property
    def precision(self) -> int | None:
        if self.digits is None or self.scale is None:
            return None
        return self.digits + self.scale


def _least(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def of_type(column: Column) -> Shape:
    """What any value of the column's type must fit: a composite's field has no more."""
    digits = None
    if column.numeric_precision is not None:
        digits = column.numeric_precision - (column.numeric_scale or 0)
    scale = column.numeric_scale if column.category is Category.NUMERIC else None
    return Shape(False, column.max_length, bits_of(column), digits, scale)


def _own(table: Table, column: Column) -> Shape:
    typed = of_type(column)
    own_checks = [c for c in table.checks if c.columns == (column.name,)]
    low, high = bounds.of(column, own_checks, typed.scale if typed.scale is not None else 2)
    return dataclasses.replace(
        typed,
        unique=table.is_unique(column.name) or column.name in table.unique_members,
        low=low,
        high=high,
        times=bounds.of_time(column, own_checks),
    )


def _same_kind(a: Column, b: Column) -> bool:
    return a.category is b.category and a.is_array == b.is_array


def _column_of(table: Table | None, name: str) -> Column | None:
    if table is None:
        return None
    try:
        return table.column(name)
    except KeyError:
        return None


def _with_target(table: Table, column: Column, target: Table | None) -> Shape:
    """The column's own shape, narrowed by its target column's (same kind of value only)."""
    shape = _own(table, column)
    other = _column_of(target, column.name)
    if target is None or other is None or not _same_kind(column, other):
        return shape
    return shape.narrowed(_own(target, other))


def shapes(copied: Schema, target: Schema) -> dict[Key, Shape]:
    """Every copied column's shape: narrowed by its target, then by its key family."""
    targets = {t.qualified: t for t in target.tables}
    own = {
        (t.qualified, c.name): _with_target(t, c, targets.get(t.qualified))
        for t in copied.tables
        for c in t.columns
    }
    shaped = dict(own)
    for key, family in families(copied.tables).items():
        shape = own[key]
        for member in family:
            shape = shape.narrowed(own[member])
        shaped[key] = shape
    return shaped


def problems(copied: Schema, rules: Rules, shaped: Mapping[Key, Shape]) -> list[str]:
    """Rules the target's (or a key family's) narrower columns cannot take, found without data."""
    found = []
    for table in copied.tables:
        table_rules = rules.for_table(table)
        for column in table.columns:
            rule = table_rules.get(column.name)
            shape = shaped[(table.qualified, column.name)]
            if rule is None or not column.writable:
                continue
            where = f"{table.qualified}.{column.name}"
            limit = shape.max_length
            # (A source column too short for a hash is the rules check's to report.)
            short = limit is not None and limit < MIN_HASH_WIDTH
            textual = column.category not in (Category.INTEGER, Category.UUID)
            if rule.kind == "hash" and textual and short and not _short(column):
                found.append(
                    f"{where}: rule 'hash' needs room for {MIN_HASH_WIDTH} hex digits, and"
                    f" the target (or a column its key joins) holds only {limit} characters;"
                    " widen that column or use 'mask' or 'fake'"
                )
            if rule.kind == "constant" and shape.unique and not table.is_unique(column.name):
                found.append(
                    f"{where}: rule 'constant' on a column the target makes unique (or whose key"
                    " joins a unique one) would give every row the same value; use 'hash',"
                    " 'fake' or a template"
                )
            value = str(rule.options.get("value", "")) if rule.kind == "constant" else ""
            if limit is not None and len(value) > limit:
                found.append(
                    f"{where}: the constant {value!r} is longer than the {limit} characters the"
                    " target column holds; shorten it or widen the column"
                )
    return found


def _short(column: Column) -> bool:
    return column.max_length is not None and column.max_length < MIN_HASH_WIDTH


@dataclass(frozen=True)
class Overflow:
    """Source rows whose value in ``column`` the target cannot take as it is."""

    table: Table
    column: str
    condition: sql.Composable  # true for a row whose value does not fit
    reason: str  # what the counted rows' values are ("longer than ..."), and the fix
    migration: bool = True  # the target's migration narrowed it (not a key family)


def overflows(
    copied: Schema, target: Schema, rules: Rules, shaped: Mapping[Key, Shape]
) -> list[Overflow]:
    """The checks a run must count on the source: values copied as they are, into less room.

    Only what a rule cannot make fit: a kept value longer than the target's
    width, beyond its integer type or its numeric digits, or an enum label
    the target's type lacks; and a pseudonymised integer key outside the
    range of the narrowest column of its family. Nothing at all when the
    target is the source's schema.
    """
    targets = {t.qualified: t for t in target.tables}
    family = families(copied.tables)
    found = []
    for table in copied.tables:
        target_table = targets.get(table.qualified)
        table_rules = rules.for_table(table)
        for column in table.columns:
            rule = table_rules.get(column.name)
            if rule is None or not column.writable or column.is_array:
                continue
            key = (table.qualified, column.name)
            other = _column_of(target_table, column.name)
            if rule.kind == "keep" and other is not None:
                found += _kept(table, column, other)
            elif rule.kind == "hash" and column.category is Category.INTEGER:
                narrow, own = shaped[key].bits, bits_of(column)
                if other is not None and _same_kind(column, other) and bits_of(other) == narrow:
                    # The migration narrowed it (and no family member is narrower):
                    # the pseudonym must fit the target, as a kept value must.
                    found += _kept(table, column, other)
                elif narrow is not None and own is not None and narrow < own:
                    narrowest = _narrowest(family.get(key, ()), copied, targets, narrow)
                    name = _INTEGER_NAMES[narrow]
                    found.append(
                        Overflow(
                            table,
                            column.name,
                            _outside(column.name, narrow),
                            f"outside {name}'s range, and {narrowest} is joined to it by a"
                            f" foreign key: both take the same pseudonym, which must fit {name};"
                            f" widen that column to {column.type_name}",
                            migration=False,
                        )
                    )
    return found


def _narrowest(
    family: Iterable[Key], copied: Schema, targets: Mapping[str, Table], bits: int
) -> str:
    """The first column of a family (source or target side) of ``bits``, by name."""
    for table_name, column_name in family:
        for table in (copied.table(table_name), targets.get(table_name)):
            if table is None:
                continue
            try:
                column = table.column(column_name)
            except KeyError:
                continue
            if bits_of(column) == bits:
                side = "" if table is copied.table(table_name) else " in the target"
                return f"{table_name}.{column_name} ({column.type_name}{side})"
    return f"a {_INTEGER_NAMES[bits]} column"


def _outside(name: str, bits: int) -> sql.Composable:
    limit = 1 << (bits - 1)
    return sql.SQL("{} NOT BETWEEN {} AND {}").format(
        sql.Identifier(name), sql.Literal(-limit), sql.Literal(limit - 1)
    )


def _kept(table: Table, column: Column, target: Column) -> list[Overflow]:
    """A kept column whose target type is narrower: the condition its rows must not meet."""
    if not _same_kind(column, target):
        return []
    name = sql.Identifier(column.name)
    changed = f"target {target.type_name}, source {column.type_name}"
    fix = "widen it in the migration, or give it a rule that shortens it (mask, fake, hash)"
    widen = "widen it in the migration"
    if column.category in (Category.TEXT, Category.OTHER) and target.max_length is not None:
        if column.max_length is not None and column.max_length <= target.max_length:
            return []
        # Trailing spaces beyond the width are cut, not refused (SQL's rule for
        # character types); anything else longer fails the load.
        condition = sql.SQL("length(rtrim(({})::text, ' ')) > {}").format(
            name, sql.Literal(target.max_length)
        )
        reason = f"longer than {target.max_length} characters ({changed}): {fix}"
        return [Overflow(table, column.name, condition, reason)]
    if column.category is Category.INTEGER:
        narrow, own = bits_of(target), bits_of(column)
        if narrow is None or own is None or narrow >= own:
            return []
        reason = f"outside {_INTEGER_NAMES[narrow]}'s range ({changed}): {widen}"
        return [Overflow(table, column.name, _outside(column.name, narrow), reason)]
    if column.category is Category.NUMERIC and target.numeric_precision is not None:
        target_scale = target.numeric_scale or 0
        digits = target.numeric_precision - target_scale
        if column.numeric_precision is not None:
            own_digits = column.numeric_precision - (column.numeric_scale or 0)
            if own_digits <= digits:
                return []
        # Rounded to the target's scale first, as the target does; NaN fits any numeric.
        condition = sql.SQL(
            "({n})::numeric <> 'NaN' AND abs(round(({n})::numeric, {s})) >= {b}"
        ).format(n=name, s=sql.Literal(target_scale), b=sql.Literal(Decimal(10) ** digits))
        reason = f"with more than {digits} digits before the point ({changed}): {widen}"
        return [Overflow(table, column.name, condition, reason)]
    if column.category is Category.ENUM:
        missing = [v for v in column.enum_values if v not in target.enum_values]
        if not missing:
            return []
        condition = sql.SQL("({})::text = ANY({})").format(name, sql.Literal(missing))
        listed = ", ".join(repr(v) for v in missing)
        reason = (
            f"holding labels the target's {target.type_name} lacks ({listed}): add them back"
            " in the migration, or give the column the rule constant"
        )
        return [Overflow(table, column.name, condition, reason)]
    return []
