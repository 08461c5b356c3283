"""Polymorphic references: a ``commentable_type`` and ``commentable_id`` that name a real row.

Rails (and apps that copied it) store "a comment on a project or an issue"
as two plain columns, the class of the parent and its id, with no foreign
key the schema could show. Seeded as unrelated text and numbers, every
comment points at nothing, and the page that lists a project's comments
is empty or fails. A pair ``<name>_type`` / ``<name>_id`` with no foreign
key on the id is read as one: each row names a table the seed writes and
one of that table's keys, the type spelled as Rails spells a model class
(``projects`` → ``Project``, ``active_storage_blobs`` → ``ActiveStorageBlob``,
without the namespaces only the app knows). Where a CHECK lists the types
(``commentable_type IN ('Project', 'Issue')``), only the tables those name
are used, each under the check's own spelling. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from seeders.schema.model import Category, Table

_KEYS = (Category.INTEGER, Category.UUID, Category.TEXT)


def pairs(table: Table) -> list[tuple[str, str]]:
    """(type column, id column) pairs of the table: ``x_type`` text beside ``x_id`` without FK."""
    columns = {c.name: c for c in table.columns}
    referencing = {name for fk in table.foreign_keys for name in fk.columns}
    found = []
    for name, column in columns.items():
        if not name.endswith("_type") or column.category is not Category.TEXT:
            continue
        partner = columns.get(name.removesuffix("_type") + "_id")
        if partner is None or partner.name in referencing or partner.is_array or column.is_array:
            continue
        if partner.category in _KEYS and partner.writable and column.writable:
            found.append((name, partner.name))
    return found


def singular(word: str) -> str:
    """``categories`` → ``category``, ``addresses`` → ``address``, ``users`` → ``user``."""
    for plural, one in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(plural) and len(word) > len(plural):
            return word[: -len(plural)] + one
    if word.endswith("s") and not word.endswith(("ss", "us")) and len(word) > 1:
        return word[:-1]
    return word


def class_name(table_name: str) -> str:
    """The model class Rails gives a table: ``active_storage_blobs`` → ``ActiveStorageBlob``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", table_name) if w]
    if not words:
        return table_name
    words[-1] = singular(words[-1])
    return "".join(w[:1].upper() + w[1:] for w in words)


def _normal(name: str) -> str:
    """A type or class name compared without case, namespaces or separators."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def targets(candidates: Iterable[Table], allowed: Sequence[str] | None) -> list[tuple[str, Table]]:
    """(type value, table) choices: every candidate under its class name, or what ``allowed`` names.

    ``allowed`` are the values a CHECK accepts; one names a table when its
    last namespace segment is that table's class name (``Blog::Post``
    names ``posts`` and ``blog_posts``).
    """
    tables = list(candidates)
    if allowed is None:
        return [(class_name(t.name), t) for t in tables]
    found = []
    for value in allowed:
        last = _normal(value.rsplit("::", 1)[-1])
        full = _normal(value)
        match = [t for t in tables if _normal(class_name(t.name)) in (full, last)]
        if match:
            found.append((value, match[0]))
    return found
