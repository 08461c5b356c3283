"""Guessing which columns hold personal data, to start a rules file. Pure.

A guess, never a guarantee: the anonymiser copies nothing that has no rule,
so a missed column is refused rather than leaked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from seeders.schema import meanings
from seeders.schema.graph import Key, families
from seeders.schema.model import Category, Column, Schema, Table

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)
_VALUE_PATTERNS = (
    (_EMAIL, "email"),
    (re.compile(r"^\+?[\d\s().-]{7,20}$"), "phone_number"),
    (re.compile(r"^\d{1,3}(\.\d{1,3}){3}$"), "ipv4"),
)


# How deep into a JSON document its keys are read.
_KEY_DEPTH = 4

# A picture of someone, a scan of their passport, their signature: stored bytes.
_MEDIA = re.compile(
    r"(^|_)(photo|picture|pic|avatar|image|img|portrait|selfie|signature|scan|face|fingerprint"
    r"|biometric|document|attachment|upload|file|voice|recording)"
)


@dataclass(frozen=True)
class PiiGuess:
    column: str
    reason: str  # "name", "type", "values", "field F" (of a composite) or "key K" (of JSON)
    suggestion: str  # a Faker provider, "hash" or "noise"
    # A JSON document's: (path, suggestion) of each key a rule can rewrite; none where
    # one cannot be addressed (a list of documents, a key holding a dot), as whole.
    keys: tuple[tuple[str, str], ...] = ()


def guess(column: Column, samples: Sequence[str], table: str = "") -> PiiGuess | None:
    """Why ``column`` (of the table named ``table``) may hold personal data, or None.

    An address in an ``inet`` column is personal data whatever the column
    is called (``last_login``, ``created_from``), so its type decides.
    """
    lowered = snake(column.name)
    if column.category is Category.INET and not column.is_array:
        return PiiGuess(column.name, "type", "ipv4")
    if lowered == "name" and meanings.organisations(table):
        return PiiGuess(column.name, "name", "company")
    if (lowered in ("name", "image", "image_url") and meanings.things(table)) or _named_thing(
        column.name
    ):
        return None  # a category's name or picture, a service's (ActiveStorage's "local")
    if column.category is Category.BYTEA and _MEDIA.search(lowered):
        return PiiGuess(column.name, "name", "photo")
    for part in column.fields:  # a home of type address (street text, city text)
        found = guess(part, (), column.name)
        if found is not None:
            return PiiGuess(column.name, f"field {part.name}", found.suggestion)
    if column.category in (
        Category.TEXT,
        Category.DATE,
        Category.INET,
        Category.NUMERIC,
        Category.FLOAT,
        Category.JSON,
    ):
        hinted = _hinted(column)
        if hinted is not None:
            return hinted
    if (column.category is Category.JSON or column.base_type == "hstore") and not column.is_array:
        return _by_keys(column, samples)
    if column.base_type == "tsvector" and not column.is_array:
        # The words of the row's text (a name, an e-mail), as a trigger copied them.
        return PiiGuess(column.name, "type", "search_words")
    if column.category not in (Category.TEXT, Category.OTHER):
        return None  # a date, a number or an id whose digits look like a phone number is none
    return _by_values(column, samples)


def _named_thing(name: str) -> bool:
    """Whether ``name`` is a thing's: ``service_name``, ``productName`` (not ``first_name``)."""
    parts = meanings.words(name)
    return len(parts) > 1 and parts[-1] == "name" and meanings.things("_".join(parts[:-1]))


def snake(name: str) -> str:
    """A column's name as words joined by ``_``: ASP.NET's ``NormalizedEmail`` reads as
    ``normalized_email``, so the hints see its words (it was kept: every address upper-cased)."""
    return "_".join(meanings.words(name))


def _by_values(column: Column, samples: Sequence[str]) -> PiiGuess | None:
    """Text whose sampled values mostly look like e-mail addresses, phone numbers or IPs."""
    texts = [s for s in samples if s]
    for pattern, suggestion in _VALUE_PATTERNS:
        if texts and sum(bool(pattern.match(s)) for s in texts) >= max(1, len(texts) // 2):
            return PiiGuess(column.name, "values", suggestion)
    return None


def _by_keys(column: Column, samples: Sequence[str]) -> PiiGuess | None:
    """A JSON document (or an ``hstore``) whose keys name personal data (``{"street": …}``).

    ``firstName`` reads as ``first_name``. A bare ``name`` says too little
    (a product's, a file's) and is passed over; the other keys decide.
    """
    paths: dict[str, list[str]] = {}
    if column.base_type == "hstore":
        raw = _hstore_keys(samples)
    else:
        paths = _key_paths(samples)
        raw = list(paths)
    keys = list(dict.fromkeys(snake(key) for key in raw))
    hits = [
        (key, hinted.suggestion)
        for key in keys
        if key != "name"
        and (hinted := _hinted(Column(key, "text", Category.TEXT, nullable=True))) is not None
    ]
    found = [
        (path, suggestion)
        for key, suggestion in hits
        for written in raw
        if snake(written) == key
        for path in paths.get(written, [""])
    ]
    # A document or list under a guessed key ({"address": {"street": …}}) is ruled by its
    # guessed keys; with none of them, removed whole.
    inner = {p.removesuffix("[]") for p, _ in found if not p.endswith("{}")}
    ruled = [
        (p if not p.endswith("{}") else p[:-2] + "[]", s)
        for p, s in found
        if not p.endswith("{}") or not any(i.startswith(p[:-2] + ".") for i in inner)
    ]
    # Keyed by someone's address ({"alice@corp.example": "admin"}): said, never printed.
    if any(_EMAIL.match(key) for key in raw):
        hits.append(("<e-mail address>", "email"))
        ruled.append(("", "email"))
    if not hits:
        return None
    named = ", ".join(key for key, _ in hits[:3]) + (", …" if len(hits) > 3 else "")
    addressed = () if any(not path for path, _ in ruled) else tuple(dict.fromkeys(ruled))
    reason = f"key{'s' if len(hits) > 1 else ''} {named}"
    return PiiGuess(column.name, reason, hits[0][1], addressed)


# A key of an hstore's text form: "email"=>"…" (quotes and backslashes escaped).
_HSTORE_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*=>')


def _hstore_keys(samples: Sequence[str]) -> list[str]:
    """The keys of the sampled pairs, as written, in the order first met."""
    found = (key.replace('\\"', '"') for s in samples for key in _HSTORE_KEY.findall(s))
    return list(dict.fromkeys(found))


def _key_paths(samples: Sequence[str]) -> dict[str, list[str]]:
    """The keys of the sampled documents, as written, in the order first met, each with
    the paths a ``keys`` rule would reach it by: its own (``address.street``), or for a
    key inside a list the list's, marked ``[]`` (``contacts[]``: a rule removes it whole);
    ``""`` where no path reaches it (a document that is a list, a key holding a dot). A key
    holding a document or a list is marked ``{}``: its own keys decide."""
    found: dict[str, list[str]] = {}

    def walk(value: object, depth: int, path: str | None, pinned: str | None) -> None:
        if depth > _KEY_DEPTH:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, bool):  # a flag (email_verified) is no one's data
                    continue
                own = "" if path == "" or "." in str(key) else f"{path + '.' if path else ''}{key}"
                at = own if pinned is None else f"{pinned}[]" if pinned else ""
                if at and pinned is None and isinstance(item, (dict, list)):
                    at += "{}"  # a document or a list: what is inside it decides
                paths = found.setdefault(str(key), [])
                if at not in paths:
                    paths.append(at)
                walk(item, depth + 1, own, pinned)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1, "", pinned if pinned is not None else (path or ""))

    for sample in samples:
        try:
            walk(json.loads(sample), 0, None, None)
        except ValueError:  # not JSON after all (a json column holds what it was given)
            continue
    return found


def _hinted(column: Column) -> PiiGuess | None:
    """What the column's name says it holds, or its domain's (CREATE DOMAIN email AS citext).

    Free text (``notes``, ``bio``) only as text: a JSON document of that name
    is guessed by its keys. A domain called ``name`` says too little.
    """
    text = column.category is Category.TEXT
    for meaning in meanings.meanings_of(column.name):
        if meaning.rule is not None and (meaning.name != "free_text" or text):
            return PiiGuess(column.name, "name", meaning.rule)
    domain = column.domain_name
    for meaning in meanings.meanings_of(domain) if domain else ():
        if meaning.rule is not None and meaning.name not in ("name", "free_text"):
            return PiiGuess(column.name, "type", meaning.rule)
    return None


_DATES = (Category.DATE, Category.TIMESTAMP, Category.TIMESTAMPTZ)
_NUMBERS = (Category.NUMERIC, Category.FLOAT)
# A documentation address (RFC 5737): an address column needs a value of its type.
_NO_ADDRESS = "192.0.2.1"


def rule_for(column: Column, suggestion: str, keys: Sequence[tuple[str, str]] = ()) -> str:
    """A rule (YAML) the column's type takes, for what a guess suggests.

    The suggestion names what the data is (a Faker provider, ``hash``,
    ``noise``); the rule must also suit how it is stored: a birth date is
    shifted, not faked; a salary is noised; an address in an ``inet``
    column cannot be a fake string. A JSON document whose guessed ``keys``
    a rule can reach gets one per key; the rest of it is kept.
    """
    if column.category is Category.JSON and not column.is_array and keys:
        ruled: dict[str, str] = {}
        for key, rule in (_key_rule(path, found) for path, found in keys):
            ruled[key] = rule if ruled.get(key) != "'null'" else "'null'"  # removal wins
        return "{keys: {" + ", ".join(f"{_yaml_key(k)}: {r}" for k, r in ruled.items()) + "}}"
    if column.is_array:
        return "'null'" if column.nullable else "{constant: '{}'}"
    if column.fields:  # a rule per field: what each guessed one takes, keep for the rest
        rules = []
        for member in column.fields:
            found = guess(member, (), column.name)
            rules.append(
                f"{member.name}: {rule_for(member, found.suggestion) if found else 'keep'}"
            )
        return "{fields: {" + ", ".join(rules) + "}}"
    if column.category in _DATES:
        return "{date_shift: {max_days: 365}}"
    if column.category in _NUMBERS:
        return "{noise: 0.1}"
    if column.category in (Category.INTEGER, Category.UUID):
        return "hash"
    empty = _empty(column)
    if empty is not None:  # no fake of these: none, or an empty one
        return "'null'" if column.nullable else f"{{constant: '{empty}'}}"
    if suggestion in ("hash", "noise"):
        return "hash"
    return f"{{fake: {suggestion}}}"


def _key_rule(path: str, suggestion: str) -> tuple[str, str]:
    """A key's path and rule: its value becomes a JSON string, so a number to noise is
    removed, as is a list holding the guessed key (no rule reaches into each element)."""
    if path.endswith("[]"):
        return path[:-2], "'null'"
    if suggestion == "noise":
        return path, "'null'"
    return path, "hash" if suggestion == "hash" else f"{{fake: {suggestion}}}"


def _yaml_key(path: str) -> str:
    """A path as a YAML key, quoted where YAML would read it otherwise."""
    return path if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", path) else json.dumps(path)


def _empty(column: Column) -> str | None:
    """The value that holds nothing of anyone's, for a type no fake suits; else None.

    An address in an ``inet`` column (a documentation one), a JSON document,
    ``hstore`` pairs, a search vector's words, a picture's bytes.
    """
    if column.category is Category.INET:
        return _NO_ADDRESS
    if column.category is Category.JSON:
        return "{}"
    if column.category is Category.BYTEA or column.base_type in ("hstore", "tsvector"):
        return ""
    return None


# Tables of credentials: sign-in tokens, sessions, API keys. A preview needs none of
# production's (whoever holds one acts as its owner), and a token in a bytea column
# under a unique key has no rule that keeps it distinct and says nothing: copied empty.
# (Doorkeeper's access grants are sign-in codes.)
_CREDENTIALS = (("tokens",), ("token",), ("sessions",), ("session",), ("api", "keys"),
                ("api", "key"), ("access", "grants"))  # fmt: skip


def _credentials(name: str) -> bool:
    """Whether a table's last words name credentials: ``users_tokens``, ``AspNetUserTokens``."""
    words = tuple(meanings.words(name))
    return any(words[-len(tail) :] == tail for tail in _CREDENTIALS)


def credential_tables(schema: Schema, leaves: Callable[[Table], bool]) -> list[str]:
    """The tables a starting rules file copies empty (``skip``): credentials no row needs.

    One that a copied table references stays copied: an empty one would
    leave that reference dangling, which the anonymiser refuses.
    """
    found = {t.qualified for t in schema.tables if _credentials(t.name) and not leaves(t)}
    changed = True
    while changed:  # a table referenced from outside the set is copied after all
        changed = False
        for table in schema.tables:
            if table.qualified in found or leaves(table):
                continue
            for fk in table.foreign_keys:
                if fk.ref_table in found:
                    found.discard(fk.ref_table)
                    changed = True
    return sorted(found)


def starting_rules(schema: Schema, guesses: Mapping[Key, PiiGuess]) -> dict[Key, tuple[str, str]]:
    """A rule and its comment for every column a guess (or its key family's) is about.

    A key and the columns referencing it must share a rule, or the copy is
    refused: the family's guessed key (the referenced, unique column; else
    its first guessed member by name) gives its rule to every member.
    """
    tables = {t.qualified: t for t in schema.tables}
    family = families(schema.tables)

    def rule(key: Key) -> str:
        found = guesses[key]
        return rule_for(tables[key[0]].column(key[1]), found.suggestion, found.keys)

    def first(members: tuple[Key, ...]) -> Key:
        guessed = [m for m in members if m in guesses]
        unique = [m for m in guessed if tables[m[0]].is_unique(m[1])]
        return (unique or guessed)[0]

    found: dict[Key, tuple[str, str]] = {}
    for key in sorted({m for g in guesses for m in family.get(g, (g,))}):
        leader = first(family.get(key, (key,)))
        if key in guesses and rule(key) == rule(leader):
            found[key] = (rule(key), f"guess: {describe(guesses[key])}")
        else:
            joined = f"same rule as {leader[0]}.{leader[1]}, joined by a foreign key"
            found[key] = (rule(leader), joined)
    return found


def describe(hit: PiiGuess) -> str:
    return f"{hit.suggestion} (by {hit.reason})"
