"""Load order through the foreign-key graph, with cycles broken. Pure.

Parents are planned and loaded before children. A cycle (orders → shipments
→ orders) is broken at a foreign key whose columns are all nullable or that
is deferrable, else at any key of the cycle. The loader validates foreign
keys once after loading (see :mod:`seeders.copy.loader`), and every key value is
planned before any row is generated, so the broken edge still gets real,
valid references rather than NULLs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from seeders.schema.model import ForeignKey, Schema, Table


@dataclass(frozen=True)
class LoadOrder:
    tables: tuple[str, ...]  # qualified names, parents first
    broken: frozenset[tuple[str, str]]  # (table, fk name) whose edge was cut to break a cycle


def _breakable(table: Table, fk: ForeignKey) -> bool:
    return fk.deferrable or all(table.column(c).nullable for c in fk.columns)


def load_order(schema: Schema) -> LoadOrder:
    """Topological order of the tables (Kahn), breaking cycles at nullable/deferrable FKs."""
    tables = {t.qualified: t for t in schema.tables}
    edges: dict[str, dict[str, list[ForeignKey]]] = {name: {} for name in tables}
    for table in schema.tables:
        for fk in table.foreign_keys:
            if (
                fk.ref_table != table.qualified and fk.ref_table in tables
            ):  # self-refs load in-table
                edges[table.qualified].setdefault(fk.ref_table, []).append(fk)
    broken: set[tuple[str, str]] = set()
    order: list[str] = []
    remaining = set(tables)
    while remaining:
        ready = sorted(n for n in remaining if not (set(edges[n]) & remaining))
        if ready:
            order.extend(ready)
            remaining -= set(ready)
            continue
        # Every remaining table waits on another: cut one edge, preferring a
        # nullable or deferrable key (the one a person would choose).
        candidates = sorted(
            (not _breakable(tables[child], fk), child, parent, fk.name)
            for child in remaining
            for parent, fks in edges[child].items()
            if parent in remaining
            for fk in fks
        )
        _, child, parent, _ = candidates[0]
        for fk in edges[child].pop(parent):
            broken.add((child, fk.name))
    return LoadOrder(tuple(order), frozenset(broken))


Key = tuple[str, str]  # (qualified table, column)


class _Families:
    """Union-find over columns, joined by foreign keys."""

    def __init__(self) -> None:
        self.parent: dict[Key, Key] = {}

    def find(self, key: Key) -> Key:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, a: Key, b: Key) -> None:
        self.parent[self.find(a)] = self.find(b)


def families(tables: Iterable[Table]) -> dict[Key, tuple[Key, ...]]:
    """Each column of a foreign key, and each key column it references: its whole family."""
    found = _Families()
    known = {t.qualified for t in tables}
    for table in tables:
        for fk in table.foreign_keys:
            if fk.ref_table not in known:
                continue
            for child, parent in zip(fk.columns, fk.ref_columns, strict=True):
                found.join((table.qualified, child), (fk.ref_table, parent))
    members: dict[Key, list[Key]] = {}
    for key in found.parent:
        members.setdefault(found.find(key), []).append(key)
    return {key: tuple(sorted(members[found.find(key)])) for key in found.parent}
