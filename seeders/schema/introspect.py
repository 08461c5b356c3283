"""Reading a schema from ``pg_catalog`` (tables, columns, keys, checks, enums, domains)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from seeders.schema.model import Category, Check, Column, ForeignKey, Schema, Table

_SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"

TABLES = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, GREATEST(c.reltuples, 0)::bigint AS rows,
       c.relkind = 'p' AS partitioned,
       -- the partition key's columns; none when it holds an expression (attnum 0)
       CASE WHEN 0 <> ALL (pt.partattrs::int2[]) THEN ARRAY(
           SELECT a.attname FROM unnest(pt.partattrs::int2[]) WITH ORDINALITY AS k(attnum, i)
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.i)
       END AS partition_key,
       -- the extension it belongs to (PostGIS's spatial_ref_sys): never the seed's to write
       (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
          AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') AS extension
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN {_SYSTEM} AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY n.nspname, c.relname
"""

# Whether a column's binary COPY form reads the same in another database.
# Built-in types' (OIDs below FirstNormalObjectId, 16384) do, and enums'
# (a label); arrays only of built-in elements, as the form carries the
# element type's OID, and composites never (they carry every field's).
_SENDS = "{t}.typsend <> 0 AND {t}.typreceive <> 0"
_BUILTIN = "{t}.oid < 16384 AND {t}.typtype IN ('b', 'r', 'm') AND " + _SENDS
_BINARY_PORTABLE = (
    "CASE WHEN base.typcategory = 'A' THEN elem.oid IS NOT NULL AND "
    + _BUILTIN.format(t="elem")
    + " AND "
    + _SENDS.format(t="base")
    + " WHEN base.typtype = 'e' THEN true ELSE "
    + _BUILTIN.format(t="base")
    + " END"
)

# A column's domains, outermost first (a domain over a domain: both), and
# what they make of the type: NOT NULL at any level, the first typmod given,
# the base type at the root. None for a column of a plain type.
_DOMAINS = """
LEFT JOIN LATERAL (
    WITH RECURSIVE chain(oid, depth) AS (
        SELECT t.oid, 0 WHERE t.typtype = 'd'
        UNION ALL
        SELECT d.typbasetype, chain.depth + 1
        FROM chain JOIN pg_type d ON d.oid = chain.oid
        WHERE d.typtype = 'd' AND chain.depth < 32
    )
    SELECT array_agg(c.oid ORDER BY c.depth) FILTER (WHERE x.typtype = 'd') AS oids,
           (array_agg(c.oid ORDER BY c.depth DESC))[1] AS root,
           bool_or(x.typnotnull) AS not_null,
           (array_agg(x.typtypmod ORDER BY c.depth)
              FILTER (WHERE x.typtype = 'd' AND x.typtypmod <> -1))[1] AS typmod
    FROM chain c JOIN pg_type x ON x.oid = c.oid
) AS dom ON true
"""

# Domains are resolved to their base type, through every level. Read for
# the columns of tables, and (FIELDS) for the attributes of composite types.
_ATTRIBUTES = """
SELECT a.attrelid AS table_oid, c.reltype AS owner_type, a.attnum, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type_name,
       a.attnotnull OR COALESCE(dom.not_null, false) AS not_null,
       a.atthasdef AS has_default, a.attidentity <> '' AS identity,
       a.attgenerated <> '' AS generated,
       COALESCE(pg_get_expr(d.adbin, d.adrelid), '') AS default_expr,
       CASE WHEN t.typtype = 'd' THEN COALESCE(dom.typmod, -1) ELSE a.atttypmod END AS typmod,
       base.typname AS base_name, base.typtype AS base_kind, base.oid AS base_oid,
       elem.typname AS elem_name, elem.typtype AS elem_kind, elem.oid AS elem_oid,
       format('%I.%I', tn.nspname, t.typname) AS type_ref,
       format('%I.%I', bn.nspname, base.typname) AS base_ref, dom.oids AS domain_oids,
       {portable} AS binary_portable
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
{domains}
JOIN pg_type base ON base.oid = COALESCE(dom.root, t.oid)
JOIN pg_namespace bn ON bn.oid = base.typnamespace
LEFT JOIN pg_type elem ON elem.oid = base.typelem AND base.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN {kinds}
  AND n.nspname NOT IN {system}
ORDER BY a.attrelid, a.attnum
"""
COLUMNS = _ATTRIBUTES.format(kinds="('r', 'p')", system=_SYSTEM, domains=_DOMAINS,
                             portable=_BINARY_PORTABLE)  # fmt: skip
FIELDS = _ATTRIBUTES.format(kinds="('c')", system=_SYSTEM, domains=_DOMAINS,
                            portable=_BINARY_PORTABLE)  # fmt: skip

ENUMS = "SELECT enumtypid AS oid, enumlabel AS label FROM pg_enum ORDER BY enumtypid, enumsortorder"

CONSTRAINTS = f"""
SELECT con.conrelid AS table_oid, con.conname AS name, con.contype AS kind, con.conkey AS keys,
       con.confrelid AS ref_oid, con.confkey AS ref_keys, con.condeferrable AS deferrable,
       pg_get_constraintdef(con.oid) AS definition, con.coninhcount > 0 AS inherited
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype IN ('p', 'u', 'f', 'c', 'x') AND n.nspname NOT IN {_SYSTEM}
ORDER BY con.conrelid, con.conname
"""

# A domain's checks, which hold wherever a column has the domain's type.
DOMAIN_CHECKS = """
SELECT con.contypid AS type_oid, con.conname AS name, pg_get_constraintdef(con.oid) AS definition,
       format('%I.%I', n.nspname, t.typname) AS domain
FROM pg_constraint con
JOIN pg_type t ON t.oid = con.contypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE con.contype = 'c' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY con.contypid, con.conname
"""

# Where a domain check reads its value: the keyword VALUE as the server
# writes it, outside string literals and quoted names.
_VALUE = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|\bVALUE\b""")

# Unique indexes that are not backing a constraint, one row per key: a plain
# column's number, or (0) an expression's text. A partial index counts as a
# unique set of its keys: values unique throughout are unique where it looks.
UNIQUE_INDEXES = f"""
SELECT i.indrelid AS table_oid, i.indexrelid AS index_oid, i.indkey[k.k - 1] AS attnum,
       pg_get_indexdef(i.indexrelid, k.k, true) AS expression
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL generate_series(1, i.indnkeyatts) AS k(k)
WHERE i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
  AND n.nspname NOT IN {_SYSTEM}
ORDER BY i.indexrelid, k.k
"""

# The tokens of an index expression as pg_get_indexdef prints it: a string
# literal (skipped), or an identifier, quoted or plain, and whether a
# parenthesis follows it (a function's name).
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"((?:[^"]|"")+)"(\()?|([A-Za-z_][A-Za-z0-9_$]*)(\()?""")

# Every column a unique index reads: plain, composite, in an expression
# (lower(email)) or in a partial index's predicate. The index's own
# dependencies on its table's columns name them all; an index backing a
# constraint depends on the constraint instead, whose keys are read above.
UNIQUE_MEMBERS = f"""
SELECT DISTINCT i.indrelid AS table_oid, d.refobjsubid AS attnum
FROM pg_index i
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
  AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisunique AND n.nspname NOT IN {_SYSTEM}
"""

_CATEGORIES = {
    "int2": Category.INTEGER, "int4": Category.INTEGER, "int8": Category.INTEGER,
    "numeric": Category.NUMERIC, "money": Category.NUMERIC,
    "float4": Category.FLOAT, "float8": Category.FLOAT,
    "text": Category.TEXT, "varchar": Category.TEXT, "bpchar": Category.TEXT,
    "citext": Category.TEXT, "name": Category.TEXT,
    "bool": Category.BOOLEAN, "date": Category.DATE,
    "timestamp": Category.TIMESTAMP, "timestamptz": Category.TIMESTAMPTZ,
    "time": Category.TIME, "timetz": Category.TIME, "interval": Category.INTERVAL,
    "uuid": Category.UUID, "json": Category.JSON, "jsonb": Category.JSON,
    "bytea": Category.BYTEA, "inet": Category.INET, "cidr": Category.INET,
}  # fmt: skip


def _column(
    row: dict[str, Any],
    enums: dict[int, tuple[str, ...]],
    composites: Callable[[int], tuple[Column, ...]],
) -> Column:
    is_array = row["elem_name"] is not None
    name, kind, oid = (
        (row["elem_name"], row["elem_kind"], row["elem_oid"])
        if is_array
        else (row["base_name"], row["base_kind"], row["base_oid"])
    )
    category = Category.ENUM if kind == "e" else _CATEGORIES.get(name, Category.OTHER)
    typmod = row["typmod"]
    max_length = typmod - 4 if name in {"varchar", "bpchar"} and typmod > 4 else None
    if name in {"bit", "varbit"} and typmod > 0:  # a bit string's typmod is its length
        max_length = typmod
    precision = scale = None
    if name == "numeric" and typmod > 4:
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    serial = row["default_expr"].startswith("nextval(")
    return Column(
        name=row["name"],
        type_name=row["type_name"],
        category=category,
        nullable=not row["not_null"],
        has_default=bool(row["has_default"]),
        identity=bool(row["identity"]) or serial,
        generated=bool(row["generated"]),
        max_length=max_length,
        numeric_precision=precision,
        numeric_scale=scale,
        is_array=is_array,
        enum_values=enums.get(oid, ()) if category is Category.ENUM else (),
        base_type="" if is_array else str(row["base_name"]),
        type_ref=str(row["type_ref"]),
        base_ref=str(row["base_ref"]) if row["base_kind"] != "e" else str(row["type_ref"]),
        binary_portable=bool(row["binary_portable"]),
        fields=composites(oid) if kind == "c" else (),
    )


def _composites(
    rows: list[dict[str, Any]], enums: dict[int, tuple[str, ...]]
) -> Callable[[int], tuple[Column, ...]]:
    """Each composite type's fields by its OID, a field of a composite type with its own.

    Built on first use, so a type's fields are ready before a type holding
    it needs them, in whatever order the catalog lists the types.
    """
    by_type: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_type[row["owner_type"]].append(row)
    built: dict[int, tuple[Column, ...]] = {}

    def fields(oid: int) -> tuple[Column, ...]:
        if oid not in built:
            built[oid] = tuple(_column(r, enums, fields) for r in by_type.get(oid, ()))
        return built[oid]

    return fields


def introspect(conn: psycopg.Connection[Any]) -> Schema:
    """The schema of every user table visible on ``conn``."""
    with conn.cursor(row_factory=dict_row) as cur:
        tables = cur.execute(TABLES).fetchall()
        columns = cur.execute(COLUMNS).fetchall()
        enum_rows = cur.execute(ENUMS).fetchall()
        constraints = cur.execute(CONSTRAINTS).fetchall()
        unique_indexes = cur.execute(UNIQUE_INDEXES).fetchall()
        unique_members = cur.execute(UNIQUE_MEMBERS).fetchall()
        domain_rows = cur.execute(DOMAIN_CHECKS).fetchall()
        field_rows = cur.execute(FIELDS).fetchall()

    enums: dict[int, list[str]] = defaultdict(list)
    for row in enum_rows:
        enums[row["oid"]].append(row["label"])
    frozen_enums = {oid: tuple(labels) for oid, labels in enums.items()}
    composites = _composites(field_rows, frozen_enums)
    names = {t["oid"]: f"{t['schema']}.{t['name']}" for t in tables}
    by_table: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in columns:
        by_table[row["table_oid"]].append(row)
    attnames = {(r["table_oid"], r["attnum"]): r["name"] for r in columns}

    def cols(oid: int, keys: list[int]) -> tuple[str, ...]:
        return tuple(attnames[(oid, k)] for k in keys)

    domain_checks: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in domain_rows:
        domain_checks[row["type_oid"]].append(row)

    index_sets = _unique_index_sets(unique_indexes, attnames, by_table)

    members: dict[int, set[str]] = defaultdict(set)
    for row in unique_members:
        if (row["table_oid"], row["attnum"]) in attnames:
            members[row["table_oid"]].add(attnames[(row["table_oid"], row["attnum"])])

    result = []
    for t in tables:
        oid = t["oid"]
        found = _constraints(oid, (c for c in constraints if c["table_oid"] == oid), names, cols)
        primary, unique, fks, checks, exclusions = (
            found.primary,
            found.unique,
            found.fks,
            found.checks,
            found.exclusions,
        )
        for column in by_table[oid]:
            checks += [
                Check(d["name"], domain_check(d["definition"], column["name"]), (column["name"],),
                      d["domain"])
                for domain in column["domain_oids"] or ()
                for d in domain_checks.get(domain, ())
            ]  # fmt: skip
        unique += [tuple(read) for read in index_sets[oid].values() if read]
        result.append(
            Table(
                schema=t["schema"],
                name=t["name"],
                columns=tuple(_column(r, frozen_enums, composites) for r in by_table[oid]),
                primary_key=primary,
                unique=tuple(unique),
                unique_members=tuple(sorted(members[oid].union(primary, *unique))),
                foreign_keys=tuple(fks),
                checks=tuple(checks),
                exclusions=tuple(exclusions),
                estimated_rows=int(t["rows"]),
                partitioned=bool(t["partitioned"]),
                partition_key=tuple(t["partition_key"] or ()),
                extension=t["extension"] or "",
            )
        )
    return Schema(tuple(result))


@dataclass
class _Constraints:
    primary: tuple[str, ...] = ()
    unique: list[tuple[str, ...]] = field(default_factory=list)
    fks: list[ForeignKey] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    exclusions: list[tuple[str, ...]] = field(default_factory=list)


def _constraints(
    oid: int,
    rows: Iterable[dict[str, Any]],
    names: dict[int, str],
    cols: Callable[[int, list[int]], tuple[str, ...]],
) -> _Constraints:
    """One table's keys, foreign keys (to tables of the schema), checks and exclusions."""
    found = _Constraints()
    for con in rows:
        if con["kind"] == "p":
            found.primary = cols(oid, con["keys"])
        elif con["kind"] == "u":
            found.unique.append(cols(oid, con["keys"]))
        elif con["kind"] == "f" and con["ref_oid"] in names:
            found.fks.append(
                ForeignKey(
                    name=con["name"],
                    columns=cols(oid, con["keys"]),
                    ref_table=names[con["ref_oid"]],
                    ref_columns=cols(con["ref_oid"], con["ref_keys"]),
                    deferrable=bool(con["deferrable"]),
                )
            )
        elif con["kind"] == "x":  # its plain columns (an expression element is 0)
            found.exclusions.append(cols(oid, [k for k in con["keys"] or [] if k]))
        elif con["kind"] == "c":
            read = cols(oid, con["keys"] or [])
            found.checks.append(
                Check(con["name"], con["definition"], read, inherited=bool(con["inherited"]))
            )
    return found


def domain_check(definition: str, column: str) -> str:
    """A domain's ``CHECK ((VALUE > 0))`` as a check of one column: ``CHECK ((stars > 0))``."""
    name = '"' + column.replace('"', '""') + '"'
    return _VALUE.sub(lambda m: name if m.group() == "VALUE" else m.group(), definition)


def _unique_index_sets(
    keys: list[dict[str, Any]],
    attnames: dict[tuple[int, int], str],
    by_table: dict[int, list[dict[str, Any]]],
) -> dict[int, dict[int, list[str]]]:
    """By table and index: its plain columns, and the columns its expressions read.

    ``lower(email)`` is unique only if ``email`` is, so that set is (email).
    """
    sets: dict[int, dict[int, list[str]]] = defaultdict(dict)
    for row in keys:
        if row["table_oid"] not in by_table:
            # A materialized view's unique index (REFRESH ... CONCURRENTLY needs one):
            # not a table a seed writes, and its columns are not among the tables' read.
            continue
        found = sets[row["table_oid"]].setdefault(row["index_oid"], [])
        if row["attnum"]:
            read = [attnames[(row["table_oid"], row["attnum"])]]
        else:
            read = _read_by(row["expression"], by_table[row["table_oid"]])
        found.extend(c for c in read if c not in found)
    return sets


def _read_by(expression: str, columns: list[dict[str, Any]]) -> list[str]:
    """The table's columns an index expression names (in the table's order).

    Read from the expression's text (the catalog keeps no list of them):
    every identifier but a function's name. A keyword spelled like a column
    (a column named ``text``, next to a ``::text`` cast) is taken for it.
    """
    named = set()
    for quoted, quoted_call, plain, plain_call in _TOKEN.findall(expression):
        if quoted and not quoted_call:
            named.add(quoted.replace('""', '"'))
        elif plain and not plain_call:
            named.add(plain)
    return [c["name"] for c in columns if c["name"] in named]
