"""Anonymisation rules: a YAML file, per table and column, checked before any write.

```yaml
version: 1
tables:
  public.customers:
    id: keep
    email: {fake: email}
    full_name: {fake: name}
    phone: {mask: {keep_last: 2}}
    birth_date: {date_shift: {max_days: 180}}
    salary: {noise: 0.1}
    api_token: hash
    notes: "null"
    country: {constant: XX}
    login: {template: "user-{id}"}
    home: {fields: {street: {fake: street_address}, city: keep, postcode: "null"}}
    profile: {keys: {email: {fake: email}, address.street: {fake: street_address}}}
  public.countries_shipped_to:
    name: {keep: {leak_check: false}}  # public reference data: "Jordan" is no one's name
  public.audit_log: skip   # copied empty: no rows, no column rules
  public.countries: leave  # not copied: the target keeps its own rows
```

Privacy by default: a column without a rule is not copied, and the run stops
before writing anything and lists every such column. ``keep`` is explicit.
Migration records (:mod:`seeders.synthetic.left`) are left as the target has
them unless the rules name them.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seeders.schema.model import Category, Column, Schema, Table
from seeders.synthetic.left import leaves, references_out
from seeders.synthetic.values import is_faker_provider

KINDS = (
    "keep",
    "null",
    "constant",
    "mask",
    "redact",
    "fake",
    "hash",
    "date_shift",
    "noise",
    "template",
    "fields",
    "keys",
)
# What a key of a JSON document takes: a value written as a JSON string, or none.
KEY_KINDS = ("keep", "null", "constant", "mask", "redact", "fake", "hash")
_TEXTUAL = (Category.TEXT, Category.OTHER)
_NUMERIC = (Category.INTEGER, Category.NUMERIC, Category.FLOAT)
_DATES = (Category.DATE, Category.TIMESTAMP, Category.TIMESTAMPTZ)


# The options of each rule written as a mapping ({mask: {keep_last: 2}}), with their types.
OPTIONS: dict[str, dict[str, type]] = {
    "keep": {"leak_check": bool},
    "null": {},
    "redact": {},
    "mask": {"keep_first": int, "keep_last": int, "char": str},
    "hash": {"length": int},
    "date_shift": {"max_days": int, "by": str},
}


class RulesError(ValueError):
    """Rules that cannot be applied; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Rule:
    kind: str
    options: Mapping[str, Any]

    @property
    def searched(self) -> bool:
        """Whether the leak check searches the column's values in the target.

        Every column but one kept as public reference data: a list of
        countries holds "Jordan", a customer may be called that, and the
        country list leaks no one.
        """
        return not (self.kind == "keep" and self.options.get("leak_check") is False)

    @property
    def writes(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        """What decides the values it writes (``leak_check`` does not)."""
        options = {k: v for k, v in self.options.items() if k != "leak_check"}
        return self.kind, tuple(sorted(options.items()))


@dataclass(frozen=True)
class Rules:
    tables: Mapping[str, Mapping[str, Rule]]
    # Subsetting: root table → SQL condition on it; empty copies every row
    # (seeders.anonymise.subset).
    subset: Mapping[str, str] = field(default_factory=dict)
    # Tables copied empty (an audit log, a huge event table): no rows, so no rules.
    skipped: frozenset[str] = frozenset()
    # Tables not copied at all: the target keeps its own rows (reference data).
    left: frozenset[str] = frozenset()

    def for_table(self, table: Table) -> Mapping[str, Rule]:
        return self.tables.get(table.qualified) or self.tables.get(table.name) or {}

    def skips(self, table: Table) -> bool:
        return table.qualified in self.skipped or table.name in self.skipped

    def leaves(self, table: Table) -> bool:
        """As :func:`seeders.synthetic.left.leaves` decides, from what these rules name."""
        names = {table.qualified, table.name}
        named = bool(names & {*self.tables, *self.skipped, *self.left})
        return leaves(table, named, bool(names & self.left))


# The rules written with one value ({fake: email}), and the option it is.
_ONE_VALUE = {"fake": "provider", "constant": "value", "noise": "ratio", "template": "template"}


def _parse_rule(raw: object, where: str, problems: list[str]) -> Rule | None:
    if raw is None:  # `ssn: null` in YAML is the null rule, not a missing one
        return Rule("null", {})
    if isinstance(raw, str):
        if raw in ("keep", "null", "redact", "hash"):
            return Rule(raw, {})
        problems.append(f"{where}: {raw!r} is not a rule; plain rules are keep, null, redact, hash")
        return None
    if isinstance(raw, dict) and len(raw) == 1:
        kind, value = next(iter(raw.items()))
        if kind not in KINDS:
            problems.append(f"{where}: unknown rule {kind!r}; rules: {', '.join(KINDS)}")
            return None
        options: dict[str, Any] | None
        if kind in _ONE_VALUE:
            options = {_ONE_VALUE[kind]: value}
        elif kind in ("fields", "keys"):
            parts = _parse_parts(kind, value, where, problems)
            if parts is None:
                return None
            options = {kind: parts}
        else:
            options = _options(kind, value, where, problems)
            if options is None:
                return None
        return Rule(kind, options)
    problems.append(f"{where}: expected a rule name or a one-key mapping such as {{fake: email}}")
    return None


_PART_EXAMPLES = {
    "fields": "field: rule, e.g. {fields: {street: {fake: street_address}, city: keep}}",
    "keys": "key: rule, e.g. {keys: {email: {fake: email}, address.city: keep}}",
}


def _parse_parts(
    kind: str, value: object, where: str, problems: list[str]
) -> dict[str, Rule] | None:
    """A rule per part of a value: a composite's fields, a JSON document's keys.

    ``{fields: {street: {fake: street_address}}}``; ``{keys: {email: {fake:
    email}, address.street: …}}``, a key inside another by its path.
    """
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}: {kind} takes a mapping of {_PART_EXAMPLES[kind]}")
        return None
    before = len(problems)
    parts = {str(n): _parse_rule(raw, f"{where}.{kind}.{n}", problems) for n, raw in value.items()}
    if kind == "keys":
        for path, rule in parts.items():
            if not all(path.split(".")):
                problems.append(f"{where}.keys.{path}: a key's path is its keys joined by dots")
            elif rule is not None and rule.kind not in KEY_KINDS:
                problems.append(
                    f"{where}.keys.{path}: a key takes {', '.join(KEY_KINDS)} ('null' removes"
                    f" it), not {rule.kind!r}"
                )
    if len(problems) > before:
        return None
    return {n: r for n, r in parts.items() if r is not None}


def _options(kind: str, value: object, where: str, problems: list[str]) -> dict[str, Any] | None:
    """A rule's options, checked: a typo (``keep_frist``) must not pass as masking all."""
    known = OPTIONS[kind]
    listed = ", ".join(known) or "none"
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: {kind} takes a mapping of options ({listed}), not {value!r}")
        return None
    options: dict[str, Any] = {}
    before = len(problems)
    for name, given in value.items():
        wanted = known.get(str(name))
        if wanted is None:
            problems.append(f"{where}: {kind} has no option {name!r}; its options: {listed}")
        elif wanted is int and (isinstance(given, bool) or not isinstance(given, int) or given < 0):
            problems.append(f"{where}: {kind}.{name} must be a whole number ≥ 0, not {given!r}")
        elif wanted is not int and not isinstance(given, wanted):
            what = "true or false" if wanted is bool else "text"
            problems.append(f"{where}: {kind}.{name} must be {what}, not {given!r}")
        else:
            options[str(name)] = given
    if kind == "keep" and options.get("leak_check") is True:
        options.pop("leak_check")  # what plain keep does
    if kind == "mask" and len(str(options.get("char", "*"))) != 1:
        problems.append(f"{where}: mask.char must be one character, not {options['char']!r}")
    if kind == "date_shift" and options.get("max_days") == 0:
        problems.append(f"{where}: date_shift.max_days must be at least 1 (0 copies the date)")
    return options if len(problems) == before else None


def parse_rules(data: object, source: str = "rules") -> Rules:
    problems: list[str] = []
    if (
        not isinstance(data, dict)
        or data.get("version") != 1
        or not isinstance(data.get("tables"), dict)
    ):
        raise RulesError([f"{source}: expected 'version: 1' and a 'tables' mapping"])
    tables: dict[str, dict[str, Rule]] = {}
    skipped: set[str] = set()
    left: set[str] = set()
    for table, columns in data["tables"].items():
        if columns in ("skip", "leave"):
            (skipped if columns == "skip" else left).add(str(table))
            continue
        if not isinstance(columns, dict):
            problems.append(
                f"{source}: tables.{table}: expected a mapping of column: rule, 'skip' (copied"
                " empty) or 'leave' (the target's rows stay)"
            )
            continue
        for column, raw in columns.items():
            rule = _parse_rule(raw, f"{source}: tables.{table}.{column}", problems)
            if rule is not None:
                tables.setdefault(str(table), {})[str(column)] = rule
    subset = data.get("subset") or {}
    if not isinstance(subset, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in subset.items()
    ):
        problems.append(
            f"{source}: subset: expected a mapping of table: SQL condition, "
            "e.g. {customers: \"country = 'DE'\"}"
        )
        subset = {}
    if problems:
        raise RulesError(problems)
    return Rules(tables, dict(subset), frozenset(skipped), frozenset(left))


def load_rules(path: Path) -> Rules:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError([f"{path}: {exc}"]) from None
    return parse_rules(data, str(path))


MIN_HASH_WIDTH = 8  # hex digits of the shortest text pseudonym


def _check_rule(table: Table, column: Column, rule: Rule, of: str = "") -> str | None:
    """What is wrong with ``rule`` for ``column`` (a field of the column at ``of``, if given)."""
    where = f"{table.qualified}.{of + '.' if of else ''}{column.name}"
    kind, category = rule.kind, column.category
    if kind == "null" and not column.nullable:
        return f"{where}: rule 'null' on a NOT NULL column"
    if kind == "constant" and not of and table.is_unique(column.name):
        return (
            f"{where}: rule 'constant' on a unique column would give every row the same value; "
            "use 'hash', 'fake' or a template"
        )
    if kind in ("mask", "redact", "fake", "template") and category not in _TEXTUAL:
        return f"{where}: rule '{kind}' needs a text column, not {column.type_name}"
    if kind == "fake" and not is_faker_provider(str(rule.options.get("provider"))):
        return f"{where}: {rule.options.get('provider')!r} is not a Faker provider"
    if kind == "hash" and category not in (*_TEXTUAL, Category.INTEGER, Category.UUID):
        return f"{where}: rule 'hash' needs a text, integer or uuid column, not {column.type_name}"
    if kind == "hash" and column.max_length is not None and column.max_length < MIN_HASH_WIDTH:
        return (
            f"{where}: rule 'hash' needs room for {MIN_HASH_WIDTH} hex digits (fewer would "
            f"collide), not {column.type_name}; widen the column or use 'mask' or 'fake'"
        )
    if kind == "date_shift" and category not in _DATES:
        return (
            f"{where}: rule 'date_shift' needs a date or timestamp column, not {column.type_name}"
        )
    if kind == "noise" and category not in _NUMERIC:
        return f"{where}: rule 'noise' needs a numeric column, not {column.type_name}"
    if kind == "noise" and column.base_type == "money":
        # money has no round(), and how many decimals it keeps depends on
        # lc_monetary: a noised amount could round back to the original.
        return (
            f"{where}: rule 'noise' does not take money (its decimals depend on lc_monetary); "
            "store the amount as numeric, or use keep, null or constant"
        )
    if kind == "template":
        fields = {f for _, f, _, _ in string.Formatter().parse(str(rule.options["template"])) if f}
        unknown = fields - {c.name for c in table.columns}
        if unknown:
            return f"{where}: template refers to unknown column(s) {sorted(unknown)}"
    if (column.is_array or column.fields) and kind not in ("keep", "null", "constant"):
        return _whole_values_only(where, column)
    return None


def _checked(table: Table, column: Column, rule: Rule, of: str = "") -> list[str]:
    """The problems of ``rule`` for ``column`` (a field of the column at ``of``, if given)."""
    if rule.kind == "fields":
        return _check_fields(table, column, rule, f"{of}.{column.name}" if of else column.name)
    if rule.kind == "keys":
        return _check_keys(table, column, rule, f"{of}.{column.name}" if of else column.name)
    problem = _check_rule(table, column, rule, of)
    return [problem] if problem else []


def key_column(path: str) -> Column:
    """A JSON document's key as the transforms see it: nullable text (its value's text)."""
    return Column(path, "text", Category.TEXT, nullable=True)


def _check_keys(table: Table, column: Column, rule: Rule, path: str) -> list[str]:
    """Keys of a JSON document (or a key's keys), each by a rule for text."""
    where = f"{table.qualified}.{path}"
    if column.category is not Category.JSON or column.is_array:
        what = "an array" if column.is_array else column.type_name
        return [f"{where}: rule 'keys' needs a json or jsonb column, not {what}"]
    keys: Mapping[str, Rule] = rule.options["keys"]
    return [
        problem
        for key, inner in keys.items()
        if (problem := _check_rule(table, key_column(key), inner, path)) is not None
    ]


def _check_fields(table: Table, column: Column, rule: Rule, path: str) -> list[str]:
    """Every field of the composite ruled (privacy by default, as for columns), each rightly."""
    where = f"{table.qualified}.{path}"
    if not column.fields or column.is_array:
        what = "an array" if column.is_array else column.type_name
        return [f"{where}: rule 'fields' needs a column of a composite type, not {what}"]
    fields: Mapping[str, Rule] = rule.options["fields"]
    names = [f.name for f in column.fields]
    found = [f"{where}.{n}: no such field in {column.type_name}" for n in fields if n not in names]
    for member in column.fields:
        if member.name not in fields:
            found.append(
                f"{where}.{member.name}: no rule ({member.type_name}); add one, or 'keep' to copy"
                " it as is"
            )
        else:
            found += _checked(table, member, fields[member.name], path)
    return found


def _whole_values_only(where: str, column: Column) -> str:
    """Why an array or a composite takes only rules that write a whole value.

    A fake street or a hash is no array and no row of the type: the target
    would refuse it mid-copy. A row with every field blank is offered instead.
    """
    if column.is_array:
        return f"{where}: arrays take keep, null or constant"
    return (
        f"{where}: a column of composite type {column.type_name} takes keep, null, constant"
        f" (a row literal, e.g. {{constant: '{column.blank_row}'}}: every field NULL) or a"
        " rule per field ({fields: {FIELD: RULE, ...}})"
    )


def check_rules(schema: Schema, rules: Rules) -> None:
    """Every column has a compatible rule, every rule a column; else RulesError (all of them)."""
    problems: list[str] = []
    known = {t.qualified for t in schema.tables} | {t.name for t in schema.tables}
    for name in (*rules.tables, *sorted(rules.skipped), *sorted(rules.left)):
        if name not in known:
            problems.append(f"rules name table {name!r}, which the source does not have")
    for table in schema.tables:
        named = {table.qualified, table.name} & {*rules.tables, *rules.skipped}
        if table.extension and named:
            problems.append(
                f"{table.qualified} belongs to extension {table.extension}, which fills it; a"
                " copy leaves it as the target has it: remove it from the rules"
            )
        if rules.skips(table) or rules.leaves(table):
            continue
        table_rules = rules.for_table(table)
        for column_name in table_rules:
            if column_name not in {c.name for c in table.columns}:
                problems.append(f"{table.qualified}.{column_name}: no such column in the source")
        for column in table.columns:
            if column.generated:
                continue
            rule = table_rules.get(column.name)
            if rule is None:
                problems.append(
                    f"{table.qualified}.{column.name}: no rule ({column.type_name}); "
                    "add one, or 'keep' to copy it as is"
                )
                continue
            problems += _checked(table, column, rule)
    problems += _check_key_consistency(schema, rules)
    problems += _check_skipped_references(schema, rules)
    problems += _check_left_references(schema, rules)
    if problems:
        raise RulesError(problems)


def _check_left_references(schema: Schema, rules: Rules) -> list[str]:
    """References across the line between copied tables and ones left as the target has them.

    A left table cannot reference a copied one, and a copied key into a
    left table must be kept as it is (or nulled): the target's keys there
    are the real ones.
    """
    problems = references_out(schema, rules.leaves)
    for table in schema.tables:
        if rules.leaves(table) or rules.skips(table):
            continue
        for fk in table.foreign_keys:
            kinds = {rules.for_table(table).get(c, Rule("keep", {})).kind for c in fk.columns}
            if rules.leaves(schema.table(fk.ref_table)) and not kinds <= {"keep", "null"}:
                problems.append(
                    f"{table.qualified} ({', '.join(fk.columns)}) references {fk.ref_table},"
                    " which keeps the target's rows: keep those columns as they are (or null"
                    " them) so they still find its keys"
                )
    return problems


def _check_skipped_references(schema: Schema, rules: Rules) -> list[str]:
    """A copied row may not reference a skipped table's (empty) rows, unless its key is nulled."""
    problems = []
    for table in schema.tables:
        if rules.skips(table) or rules.leaves(table):
            continue
        for fk in table.foreign_keys:
            parent = schema.table(fk.ref_table)
            nulled = all(rules.for_table(table).get(c) == Rule("null", {}) for c in fk.columns)
            if rules.skips(parent) and not nulled:
                columns = ", ".join(fk.columns)
                problems.append(
                    f"{table.qualified} references {parent.qualified}, which is skipped: skip"
                    f" {table.qualified} too, give {columns} the rule null, or copy"
                    f" {parent.qualified}"
                )
    return problems


def _check_key_consistency(schema: Schema, rules: Rules) -> list[str]:
    """A foreign key must be transformed exactly like the key it references, or joins break."""
    problems = []
    for table in schema.tables:
        for fk in table.foreign_keys:
            parent = schema.table(fk.ref_table)
            for child_col, parent_col in zip(fk.columns, fk.ref_columns, strict=True):
                child_rule = rules.for_table(table).get(child_col)
                parent_rule = rules.for_table(parent).get(parent_col)
                if child_rule and parent_rule and child_rule.writes != parent_rule.writes:
                    child = f"{table.qualified}.{child_col}"
                    parent_name = f"{parent.qualified}.{parent_col}"
                    kinds = f"{child_rule.kind} and {parent_rule.kind}"
                    problems.append(
                        f"{child} references {parent_name}: give both the same rule "
                        f"(they have {kinds}) so pseudonymised keys still join"
                    )
    return problems
