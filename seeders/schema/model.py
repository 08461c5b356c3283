"""A database schema as frozen data: what the seeders need to know, nothing more.

Built by :mod:`seeders.schema.introspect` from ``pg_catalog``; everything downstream
(plans, generators, rules checks) is pure and works on these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Category(StrEnum):
    """What kind of value a column holds, after resolving domains and arrays."""

    INTEGER = "integer"
    NUMERIC = "numeric"
    FLOAT = "float"
    TEXT = "text"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    TIME = "time"
    INTERVAL = "interval"
    UUID = "uuid"
    JSON = "json"
    BYTEA = "bytea"
    ENUM = "enum"
    INET = "inet"
    OTHER = "other"


# Width of each integer type, by its pg_type name (a domain's: its base type's).
INTEGER_BITS = {"int2": 16, "int4": 32, "int8": 64}


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str  # as formatted by format_type(), e.g. "character varying(40)"
    category: Category
    nullable: bool
    has_default: bool = False
    identity: bool = False  # GENERATED ... AS IDENTITY or serial (nextval default)
    generated: bool = False  # GENERATED ALWAYS AS (expr) STORED: never written
    max_length: int | None = None
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    is_array: bool = False
    enum_values: tuple[str, ...] = ()
    base_type: str = ""  # pg_type name of the type, or of a domain's base type: "int4"
    type_ref: str = ""  # the type itself, quoted and qualified, without a typmod: "pg_catalog.int4"
    # What a domain's checks are evaluated on: a value cast to the domain
    # itself raises for one it refuses. The type itself for any other type.
    base_ref: str = ""
    binary_portable: bool = False  # its binary COPY form reads the same in any database
    # A composite type's attributes, in order (CREATE TYPE address AS (street text, ...)):
    # each a value of its own, by its own name and type. None for any other type.
    fields: tuple[Column, ...] = ()

    @property
    def writable(self) -> bool:
        return not self.generated

    @property
    def domain_name(self) -> str:
        """The domain's own name, lowercased (``email`` for CREATE DOMAIN email); "" if none."""
        if not self.base_ref or self.base_ref == self.type_ref:
            return ""
        return self.type_ref.rsplit(".", 1)[-1].strip('"').lower()

    @property
    def blank_row(self) -> str:
        """A row of its composite type with every field NULL: ``(,,)`` for three fields."""
        return "(" + "," * (len(self.fields) - 1) + ")"

    @property
    def checked_as(self) -> str:
        """The type a candidate value is cast to before the column's checks read it."""
        return self.base_ref or self.type_ref


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str  # qualified "schema.table"
    ref_columns: tuple[str, ...]
    deferrable: bool = False


@dataclass(frozen=True)
class Check:
    name: str
    expression: str  # as pg_get_constraintdef writes it: "CHECK ((price >= 0))"
    columns: tuple[str, ...] = ()  # the columns it reads
    # The domain it belongs to ("public.rating"), its VALUE read as the column's name.
    domain: str = ""
    inherited: bool = False  # from a parent table: only the parent's to drop

    @property
    def validated(self) -> bool:
        """Every existing row passed it; ``NOT VALID`` checks only rows written since."""
        return not self.expression.endswith(" NOT VALID")

    @property
    def condition(self) -> str:
        """The bare boolean expression, to evaluate on candidate values."""
        text = self.expression.removesuffix(" NOT VALID")
        return text.removeprefix("CHECK ")


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()  # unique constraints and unique indexes
    # Every column any unique index reads (composite, expression, partial):
    # a transform must keep distinct values distinct there.
    unique_members: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[Check, ...] = ()
    # Each exclusion constraint's columns (EXCLUDE USING gist (room WITH =, during WITH &&)).
    exclusions: tuple[tuple[str, ...], ...] = ()
    estimated_rows: int = 0
    partitioned: bool = False  # its rows live in its partitions (each read through it)
    partition_key: tuple[str, ...] = ()  # its key's columns (none for an expression key)
    extension: str = ""  # the extension whose table it is (its own data, left alone)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.qualified} has no column {name!r}")

    def is_unique(self, column: str) -> bool:
        """True if this column alone must be unique (PK or single-column unique)."""
        return (column,) == self.primary_key or (column,) in self.unique


@dataclass(frozen=True)
class Schema:
    tables: tuple[Table, ...] = field(default_factory=tuple)

    def table(self, qualified: str) -> Table:
        for table in self.tables:
            if table.qualified == qualified or (
                table.schema == "public" and table.name == qualified
            ):
                return table
        raise KeyError(f"no table {qualified!r}")


def bits_of(column: Column) -> int | None:
    """An integer column's width in bits (its type's, or its domain's base type's); else None."""
    if column.category is not Category.INTEGER or column.is_array:
        return None
    return INTEGER_BITS.get(column.base_type, 64)
