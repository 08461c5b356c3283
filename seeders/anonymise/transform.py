"""Anonymisation transforms as SQL expressions, evaluated by the source server.

Transforming a million rows value by value in Python costs ten times the
copy itself; PostgreSQL evaluates the same logic in C while it streams the
rows out. So each rule becomes an expression in the ``COPY (SELECT ...) TO
STDOUT`` that reads the source, and the client only passes bytes along.

Every transform is keyed by the original value under a secret salt (built
from the built-in ``sha256()``; no extension needed on the source): the
same value gives the same output in every table and every run, so a
pseudonymised key still joins its foreign keys, and without the salt an
output says nothing about its input. The ``hash`` rule's pseudonym is
HMAC-SHA256, which anyone holding the salt can recompute with any HMAC
library (to find a known customer's pseudonym, say). The other rules only
draw a few random bits per value (which fake, how many days, how much
noise); they use a keyed SHA-256 with one call instead of HMAC's two, as
each ``sha256()`` call costs PostgreSQL ~0.45 µs of set-up, most of a
row's transform time (see :meth:`Keyed.prf` for why it is sound). NULL
stays NULL. Everything is composed with ``psycopg.sql`` literals and
identifiers, never string formatting.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache

from psycopg import sql

from seeders.anonymise import bounds
from seeders.anonymise.rules import MIN_HASH_WIDTH, Rule, key_column
from seeders.anonymise.shapes import Shape, of_type
from seeders.schema.model import Category, Column, Table
from seeders.synthetic.values import faker_pool, unescape

_BLOCK = 64  # SHA-256 block size, for HMAC's inner and outer pads
_SIXTY_BITS = (1 << 60) - 1
# Hex digits that make a value unique: 64 bits keep collisions improbable
# (~1e-6) even at four million rows.
UNIQUE_TAG = 16


PSEUDONYM = "hash"  # the purpose whose MAC is the output itself: HMAC


@dataclass(frozen=True)
class Keyed:
    """The key material for one run, as bytea literals for SQL."""

    inner: bytes  # HMAC's key ⊕ ipad
    outer: bytes  # HMAC's key ⊕ opad
    block: bytes  # the PRF's key: one whole SHA-256 block, derived from the salt

    @classmethod
    def from_salt(cls, salt: bytes) -> Keyed:
        key = hashlib.sha256(salt).digest() if len(salt) > _BLOCK else salt
        key = key.ljust(_BLOCK, b"\0")
        block = hashlib.sha512(b"preview-envs prf\0" + salt).digest()
        return cls(bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key), block)

    @staticmethod
    def _text(value: sql.Composable) -> sql.Composable:
        """The UTF-8 bytes of a value's text, whatever the server's encoding.

        ``textsend`` gives the text in the session's client encoding, which
        the anonymiser sets to UTF-8; it costs a tenth of ``convert_to``,
        which looks the encoding up by name on every call. (``text::bytea``
        would not do at all: that cast parses backslash escapes.)
        """
        return sql.SQL("textsend(({})::text)").format(value)

    def mac(self, purpose: str, value: sql.Composable) -> sql.Composable:
        """HMAC-SHA256(salt, purpose ‖ 0x00 ‖ value::text) as bytea."""
        prefix = self.inner + purpose.encode() + b"\0"
        return sql.SQL("sha256({} || sha256({} || {}))").format(
            sql.Literal(self.outer), sql.Literal(prefix), self._text(value)
        )

    def prf(self, purpose: str, value: sql.Composable) -> sql.Composable:
        """SHA-256(key block ‖ purpose ‖ 0x00 ‖ value::text) as bytea.

        A secret prefix is a PRF on a prefix-free set of padded messages
        (the cascade theorem of Bellare, Canetti and Krawczyk, under the
        same assumption on SHA-256's compression function as HMAC's proof).
        These are prefix-free: the key fills the first block, each purpose
        ends in a NUL, and a value's text never holds a NUL, while SHA-256's
        padding always adds one (the top byte of its length field); so no
        padded message begins another, and a length extension reaches no
        value's input.
        """
        prefix = self.block + purpose.encode() + b"\0"
        return sql.SQL("sha256({} || {})").format(sql.Literal(prefix), self._text(value))


class Macs:
    """The MACs (and pool look-ups) one table's expressions need, once per row.

    MACs become columns of one ``LATERAL (SELECT ... OFFSET 0)`` subquery
    (the OFFSET keeps the planner from inlining them wherever they are used,
    where each would be recomputed). Their number and hex forms are cheap and
    derived where they are used: a second subquery level for them costs more
    per row (~0.5 µs) than deriving a form twice. Fake-value pools are joined
    as VALUES lists: indexing a large text[] walks its elements, a hash join
    does not. Everything added to the row is named ``__pe_…``: the rules
    refer to the table's columns unqualified, and a pool column named ``v``
    or ``head`` would make a table's own ``v`` or ``head`` ambiguous.
    """

    def __init__(self, keyed: Keyed) -> None:
        self.keyed = keyed
        self.entries: list[tuple[str, sql.Composable]] = []
        self.pools: list[tuple[tuple[str, ...], int]] = []  # (values, mac index)

    def _index(self, purpose: str, value: sql.Composable) -> int:
        for index, (known_purpose, known_value) in enumerate(self.entries):
            if known_purpose == purpose and known_value == value:
                return index
        self.entries.append((purpose, value))
        return len(self.entries) - 1

    def _keyed(self, purpose: str, value: sql.Composable) -> sql.Composable:
        if purpose == PSEUDONYM:
            return self.keyed.mac(purpose, value)
        return self.keyed.prf(purpose, value)

    def _mac(self, purpose: str, value: sql.Composable) -> sql.Identifier:
        return sql.Identifier(f"__pe_m{self._index(purpose, value)}")

    def number(self, purpose: str, value: sql.Composable) -> sql.Composable:
        """A non-negative bigint: the MAC's first 60 bits (for pseudonymised integer keys).

        Its first 8 bytes as a bigint, shifted and masked (no detour through
        15 hex digits).
        """
        return sql.SQL(
            "((('x' || encode(substring({} FROM 1 FOR 8), 'hex'))::bit(64)::bigint >> 4) & {})"
        ).format(self._mac(purpose, value), sql.Literal(_SIXTY_BITS))

    def draw(self, purpose: str, value: sql.Composable) -> sql.Composable:
        """A number in [0, 2³²): the MAC's first 4 bytes, for choices among few options.

        Four ``get_byte`` calls cost a tenth of the text round trip
        :meth:`number` takes, and a modulus of up to a few million over 32
        bits is uniform to within 0.05 %.
        """
        mac = self._mac(purpose, value)
        return sql.SQL(
            "((get_byte({m}, 0)::bigint << 24) | (get_byte({m}, 1) << 16)"
            " | (get_byte({m}, 2) << 8) | get_byte({m}, 3))"
        ).format(m=mac)

    def byte(self, purpose: str, value: sql.Composable, k: int) -> sql.Composable:
        """The MAC's ``k``-th byte (0 to 31), a number in [0, 256)."""
        return sql.SQL("get_byte({}, {})").format(self._mac(purpose, value), sql.Literal(k))

    def sign(self, purpose: str, value: sql.Composable) -> sql.Composable:
        """1 or -1, from a MAC byte :meth:`draw` does not use."""
        return sql.SQL("(1 - 2 * (get_byte({}, 4) & 1))").format(self._mac(purpose, value))

    def hex(self, purpose: str, value: sql.Composable, width: int) -> sql.Composable:
        """The MAC's first ``width`` hex digits (only the bytes needed are encoded)."""
        encoded = sql.SQL("encode(substring({} FROM 1 FOR {}), 'hex')").format(
            self._mac(purpose, value), sql.Literal((width + 1) // 2)
        )
        if width % 2 == 0:
            return encoded
        return sql.SQL("left({}, {})").format(encoded, sql.Literal(width))

    def pick(self, values: tuple[str, ...], purpose: str, value: sql.Composable) -> Pick:
        """One of ``values``, chosen by the MAC of ``value``."""
        self.pools.append((values, self._index(purpose, value)))
        return Pick(f"__pe_pool{len(self.pools) - 1}", email=_emails(values))

    def joins(self) -> sql.Composable:
        """The FROM-clause additions computing everything registered, or nothing."""
        if not self.entries:
            return sql.SQL("")
        macs = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(self._keyed(purpose, value), sql.Identifier(f"__pe_m{i}"))
            for i, (purpose, value) in enumerate(self.entries)
        )
        parts = [sql.SQL(" CROSS JOIN LATERAL (SELECT {} OFFSET 0) AS __pe_macs").format(macs)]
        for k, (values, index) in enumerate(self.pools):
            # E-mail pools come split at the '@' as well, so tagging one
            # costs no split_part per row.
            rows = _pool_rows(values)
            alias = sql.Identifier(f"__pe_pool{k}")
            purpose, value = self.entries[index]
            parts.append(
                # LEFT: a NULL value has no MAC, so no pool row; its row stays
                # (and its column NULL), where an inner join would drop it.
                sql.SQL(
                    " LEFT JOIN (VALUES {rows})"
                    " AS {a}(__pe_i, __pe_v, __pe_head, __pe_tail, __pe_next)"
                    " ON {a}.__pe_i = {n} % {size}"
                ).format(
                    rows=rows, a=alias, n=self.draw(purpose, value), size=sql.Literal(len(values))
                )
            )
        return sql.Composed(parts)


@dataclass(frozen=True)
class Pick:
    """The columns of a pool row chosen for the current row."""

    alias: str
    email: bool

    @property
    def value(self) -> sql.Composable:
        return sql.Identifier(self.alias, "__pe_v")

    @property
    def following(self) -> sql.Composable:
        """The pool's next value (the first after the last): in a pool of two, another one."""
        return sql.Identifier(self.alias, "__pe_next")

    def tagged(self, tag: sql.Composable, max_length: int | None) -> sql.Composable:
        """The value with a digest tag, e-mail addresses kept shaped like e-mail addresses.

        In a column of ``max_length``, the value is shortened, never the tag.
        """
        if not self.email:
            return _tagged(self.value, tag, max_length)
        head: sql.Composable = sql.Identifier(self.alias, "__pe_head")
        tail = sql.Identifier(self.alias, "__pe_tail")
        if max_length is not None:
            room = sql.SQL("greatest({} - length({}), 0)").format(
                sql.Literal(max_length - 1 - UNIQUE_TAG), tail
            )
            head = sql.SQL("left({}, {})").format(head, room)
        return sql.SQL("{} || '.' || {} || {}").format(head, tag, tail)


def _tagged(value: sql.Composable, tag: sql.Composable, max_length: int | None) -> sql.Composable:
    """``value-tag``; in a column of ``max_length``, the value shortened to leave the tag whole."""
    if max_length is None:
        return sql.SQL("{} || '-' || {}").format(value, tag)
    room = max_length - 1 - UNIQUE_TAG
    if room < 1:  # only the tag fits (as much of it as fits)
        return sql.SQL("left({}, {})").format(tag, sql.Literal(max_length))
    return sql.SQL("left({}, {}) || '-' || {}").format(value, sql.Literal(room), tag)


@lru_cache(maxsize=64)
def _pool_rows(values: tuple[str, ...]) -> sql.SQL:
    """A pool's VALUES rows (index, value, head, tail, next value) as SQL text.

    Rendered once a pool: as five thousand composed literals it cost ~20 ms
    of Python to build and ~5 ms again each time a query holding it was sent
    (twice a table, or more with ``--jobs``), and a provider's pool is the
    same in every table (100 tables with a faked e-mail and name: 3.4 s
    under a profiler).
    Each text is quoted by :class:`psycopg.sql.Literal`, which needs no
    connection: one with a backslash is written ``E'…'``, read the same
    under either ``standard_conforming_strings``.
    """

    def row(i: int, value: str) -> str:
        texts = (*_pool_row(value), values[(i + 1) % len(values)])
        return f"({i}, " + ", ".join(sql.Literal(t).as_string() for t in texts) + ")"

    return sql.SQL(", ".join(row(i, v) for i, v in enumerate(values)))


def _emails(values: tuple[str, ...]) -> bool:
    return any("@" in v for v in values[:10])


def _pool_row(value: str) -> tuple[str, str, str]:
    """(value, the part a tag follows, the part after the tag): split at the first '@'."""
    head, at, domain = value.partition("@")
    return value, head, at + domain


def _fit(expr: sql.Composable, shape: Shape) -> sql.Composable:
    if shape.max_length is None:
        return expr
    return sql.SQL("left({}, {})").format(expr, sql.Literal(shape.max_length))


def _unless_null(col: sql.Composable, expr: sql.Composable) -> sql.Composable:
    return sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(col, expr)


def _unless_none(column: Column, col: sql.Composable, expr: sql.Composable) -> sql.Composable:
    """NULL stays NULL, and an empty text stays empty: both say "none", and say nothing.

    Apps write ``''`` for "none" as often as NULL (Supabase's auth keeps an
    empty ``confirmation_token`` for every confirmed user, and indexes the
    tokens as unique where not empty). A fake or pseudonym of ``''`` would
    give every such row one and the same value: the app would see a pending
    token everywhere, and that unique index could not be rebuilt.
    """
    if column.category is not Category.TEXT or column.is_array:
        return _unless_null(col, expr)
    return sql.SQL("CASE WHEN {c} IS NULL THEN NULL WHEN {c} = '' THEN '' ELSE {e} END").format(
        c=col, e=expr
    )


def expression(
    table: Table,
    column: Column,
    rule: Rule,
    keyed: Macs,
    outputs: dict[str, sql.Composable],
    shape: Shape,
    value: sql.Composable | None = None,
) -> sql.Composable:
    """The SELECT expression that yields the anonymised value of one column.

    ``outputs`` holds the expressions of the columns before it (templates
    refer to other columns' anonymised values, never their originals).
    ``shape`` is what the value must fit (:mod:`seeders.anonymise.shapes`): the
    target's limits and the column's key family's, so that a key and the
    columns referencing it get the same pseudonym whatever their types.
    ``value``: where the original is read, if not the column itself (a
    composite's field, ``(home).street``).
    """
    col = value if value is not None else sql.Identifier(column.name)
    kind, opts = rule.kind, rule.options
    if kind == "keep":
        return col
    if kind == "fields":
        return _unless_null(col, _row(table, column, opts["fields"], keyed, outputs, col))
    if kind == "keys":
        return _unless_null(col, _keys(table, column, opts["keys"], keyed, outputs, col))
    if kind == "null":
        return sql.SQL("NULL")
    if kind == "constant":
        return _unless_null(col, sql.Literal(str(opts["value"])))
    if kind in ("mask", "redact"):
        masked = _mask(shape, col, opts if kind == "mask" else {}, keyed)
        if shape.unique:  # a mask of '' is '' already, but for a unique column's tag
            return _unless_none(column, col, masked)
        return _unless_null(col, masked)
    if kind == "fake":
        return _unless_none(column, col, _fake(shape, col, str(opts["provider"]), keyed))
    if kind == "hash":
        hashed = _hash(column, shape, col, int(opts.get("length", 16)), keyed)
        return _unless_none(column, col, hashed)
    if kind == "date_shift":
        by = opts.get("by") or (table.primary_key[0] if len(table.primary_key) == 1 else None)
        key = sql.Identifier(str(by)) if by else col
        return _unless_null(
            col, _date_shift(column, shape, col, key, int(opts.get("max_days", 30)), keyed)
        )
    if kind == "noise":
        return _unless_null(col, _noise(column, shape, col, float(opts["ratio"]), keyed))
    if kind == "template":
        return _unless_null(col, _fit(_template(str(opts["template"]), outputs), shape))
    raise ValueError(f"unknown rule {kind!r}")


def _row(
    table: Table,
    column: Column,
    fields: dict[str, Rule],
    keyed: Macs,
    outputs: dict[str, sql.Composable],
    col: sql.Composable,
) -> sql.Composable:
    """A composite value rebuilt field by field, each by its own rule: ``ROW(…)::address``."""
    parts = [
        expression(table, member, fields[member.name], keyed, outputs, of_type(member),
                   sql.SQL("({}).{}").format(col, sql.Identifier(member.name)))
        for member in column.fields
    ]  # fmt: skip
    return sql.SQL("ROW({})::{}").format(sql.SQL(", ").join(parts), sql.SQL(column.checked_as))


def key_path(path: str) -> sql.Composable:
    """A key's path in a JSON document, as ``#>>`` and ``jsonb_set`` take it: ``'{a,b}'``."""
    return sql.SQL("{}::text[]").format(sql.Literal(path.split(".")))


def safe_path(doc: sql.Composable, path: str) -> sql.Composable:
    """``path``, or the empty path (which changes nothing) where the document cannot take it.

    ``jsonb_set`` and ``#-`` fail on a key step into an array ("path element
    … is not an integer"); one document whose ``name`` is a list must not
    stop the copy. (Rewriting a value never makes an array, so the original
    document answers for the rewritten one.)
    """
    parts = path.split(".")
    arrays = [
        sql.SQL("jsonb_typeof({}) IS DISTINCT FROM 'array'").format(
            sql.SQL("{} #> {}").format(doc, key_path(".".join(parts[:i]))) if i else doc
        )
        for i in range(len(parts))
        if not parts[i].isdigit()
    ]
    if not arrays:
        return key_path(path)
    return sql.SQL("CASE WHEN {} THEN {} ELSE '{{}}'::text[] END").format(
        sql.SQL(" AND ").join(arrays), key_path(path)
    )


def key_value(col: sql.Composable, path: str) -> sql.Composable:
    """The text of the value at ``path`` (NULL where the document has none)."""
    return sql.SQL("(({})::jsonb #>> {})").format(col, key_path(path))


def _keys(
    table: Table,
    column: Column,
    keys: dict[str, Rule],
    keyed: Macs,
    outputs: dict[str, sql.Composable],
    col: sql.Composable,
) -> sql.Composable:
    """A JSON document with the values at the ruled keys rewritten, the rest as it was.

    Each value is transformed as the text it holds and written back as a
    JSON string; ``null`` removes the key. A document without the key stays
    without it (``jsonb_set`` creates nothing), and one that is no object
    (an array, a string) is left whole: it has no keys to rewrite. Every
    rule reads the original document, never another key's output.
    """
    doc = sql.SQL("({})::jsonb").format(col)
    rewritten: sql.Composable = doc
    for path, rule in keys.items():
        if rule.kind == "keep":
            continue
        at = safe_path(doc, path)
        if rule.kind == "null":
            rewritten = sql.SQL("({} #- {})").format(rewritten, at)
            continue
        leaf = key_column(path)
        value = expression(table, leaf, rule, keyed, outputs, of_type(leaf), key_value(col, path))
        rewritten = sql.SQL(
            "jsonb_set({}, {}, coalesce(to_jsonb(({})::text), 'null'::jsonb), false)"
        ).format(rewritten, at, value)
    guarded = sql.SQL("CASE WHEN jsonb_typeof({d}) = 'object' THEN {r} ELSE {d} END").format(
        d=doc, r=rewritten
    )
    if column.base_type == "json":
        return sql.SQL("({})::json").format(guarded)
    return guarded


def generated_values(rule: Rule, shape: Shape) -> tuple[str, ...]:
    """Values a rule writes in this column that come from no original: a fake's pool, a constant.

    Real data holds values a Faker pool holds too (common names, cities), and
    a constant may be one of the column's own originals; such a value, written
    by the rule, says nothing about the row it lands in, so the leak check
    does not count it in this column. A unique column only ever gets tagged
    fakes, so none there.
    """
    if rule.kind == "constant":
        return (str(rule.options["value"]),)
    if rule.kind != "fake" or shape.unique:
        return ()
    limit = shape.max_length
    pool = _pool_of(shape, str(rule.options["provider"]))
    return tuple(dict.fromkeys(p[:limit] if limit is not None else p for p in pool))


@cache
def fake_pool(provider: str) -> tuple[str, ...]:
    """The values a ``fake`` rule draws from, as written (pools are kept COPY-escaped)."""
    return tuple(unescape(p) for p in faker_pool(provider, 0))


def _pool_of(shape: Shape, provider: str) -> tuple[str, ...]:
    """The provider's pool, or the part of it the target's checks accept (``Shape.fakes``)."""
    return shape.fakes if shape.fakes is not None else fake_pool(provider)


def _mask(shape: Shape, col: sql.Composable, opts: object, keyed: Macs) -> sql.Composable:
    options = opts if isinstance(opts, dict) else {}
    first, last = int(options.get("keep_first", 0)), int(options.get("keep_last", 0))
    char = sql.Literal((str(options.get("char", "*"))[:1]) or "*")
    head, tail = sql.Literal(first), sql.Literal(last)
    # The kept ends and the masked middle; a part that keeps nothing is left
    # out (each costs a function call per row).
    parts: list[sql.Composable] = []
    if first:
        parts.append(sql.SQL("left({}, {})").format(col, head))
    middle = sql.SQL("length({})").format(col)
    for kept, count in ((head, first), (tail, last)):
        if count:
            middle = sql.SQL("{} - {}").format(middle, kept)
    # repeat() takes a negative count as 0, and right() a count past the
    # start as the whole text: only ends that could overlap need more.
    parts.append(sql.SQL("repeat({}, {})").format(char, middle))
    if last and not first:
        parts.append(sql.SQL("right({}, {})").format(col, tail))
    elif last:
        parts.append(
            sql.SQL("right({c}, least({t}, greatest(length({c}) - {h}, 0)))").format(
                c=col, h=head, t=tail
            )
        )
    masked: sql.Composable = sql.SQL(" || ").join(parts)
    if shape.unique:
        masked = _tagged(masked, keyed.hex("mask", col, UNIQUE_TAG), shape.max_length)
    return _fit(masked, shape)


def _fake(shape: Shape, col: sql.Composable, provider: str, keyed: Macs) -> sql.Composable:
    purpose = f"fake:{provider}"
    if shape.unique and shape.pattern is not None:
        return _patterned(shape.pattern, purpose, col, keyed)
    chosen = keyed.pick(_pool_of(shape, provider), purpose, col)
    pick = _fit(chosen.value, shape)
    other: sql.Composable
    if shape.fakes is not None and len(shape.fakes) > 1 and not shape.unique:
        # A pool the target's check accepts (seeders.anonymise.fakes), of distinct values
        # that fit: the next one, not a tagged value the check may refuse.
        other = chosen.following
    else:
        other = _fit(chosen.tagged(keyed.hex(purpose, col, UNIQUE_TAG), shape.max_length), shape)
        if shape.unique:
            return other
    # Never hand back the original, even by chance.
    return sql.SQL("CASE WHEN {p} = {c}::text THEN {t} ELSE {p} END").format(p=pick, c=col, t=other)


def _patterned(
    positions: tuple[str, ...], purpose: str, col: sql.Composable, keyed: Macs
) -> sql.Composable:
    """A value of the pattern's form, each free position's character picked by a MAC byte.

    Fixed characters are written as they are; a MAC has 32 bytes, so the
    33rd free position reads a second MAC (of the same value, another purpose).
    """
    parts: list[sql.Composable] = []
    fixed = ""
    free = 0
    for chars in positions:
        if len(chars) == 1:
            fixed += chars
            continue
        if fixed:
            parts.append(sql.Literal(fixed))
            fixed = ""
        byte = keyed.byte(purpose if free < 32 else f"{purpose}#{free // 32}", col, free % 32)
        parts.append(
            sql.SQL("substr({}, 1 + {} % {}, 1)").format(
                sql.Literal(chars), byte, sql.Literal(len(chars))
            )
        )
        free += 1
    if fixed:
        parts.append(sql.Literal(fixed))
    return sql.SQL("({})").format(sql.SQL(" || ").join(parts))


# Noise is clamped to an integer column's range; pseudonyms of the ones
# narrower than bigint must fit, and distinct keys must stay distinct, so
# those are permuted.
_FEISTEL_ROUNDS = 4  # four rounds of a PRF make a strong pseudorandom permutation


def _hash(
    column: Column, shape: Shape, col: sql.Composable, length: int, keyed: Macs
) -> sql.Composable:
    if column.category is Category.INTEGER:
        bits = shape.bits or 64
        if bits < 64:
            return _permuted(col, bits, column.type_name, keyed.keyed)
        return keyed.number(PSEUDONYM, col)
    if column.category is Category.UUID:
        h = keyed.hex(PSEUDONYM, col, 32)
        return sql.SQL(
            "(substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-4' || substr({h}, 14, 3)"
            " || '-a' || substr({h}, 18, 3) || '-' || substr({h}, 21, 12))::uuid"
        ).format(h=h)
    width = max(MIN_HASH_WIDTH, min(length, 64, shape.max_length or 64))
    return keyed.hex(PSEUDONYM, col, width)


def _permuted(col: sql.Composable, bits: int, type_name: str, keyed: Keyed) -> sql.Composable:
    """A keyed permutation of the column type's whole range: a Feistel network.

    60 MAC bits do not fit an ``integer``, and 31 would collide (two of
    100 000 keys almost surely share one). A balanced Feistel network with
    HMAC-SHA256 rounds (Luby and Rackoff: four rounds give a strong
    pseudorandom permutation) maps the range onto itself, so distinct keys
    stay distinct and every pseudonym fits. Each round is one subquery level
    (OFFSET 0), so its half is computed once, not once per use.
    """
    half, offset = bits // 2, 1 << (bits - 1)
    mask = sql.Literal((1 << half) - 1)
    levels = [
        sql.SQL(
            "(SELECT (__pe_u >> {h}) AS __pe_l, (__pe_u & {m}) AS __pe_r"
            " FROM (SELECT ({c})::bigint + {o} AS __pe_u) AS __pe_in OFFSET 0) AS __pe_f0"
        ).format(h=sql.Literal(half), m=mask, c=col, o=sql.Literal(offset))
    ]
    for i in range(1, _FEISTEL_ROUNDS + 1):
        right = sql.SQL("__pe_f{}.__pe_r").format(sql.SQL(str(i - 1)))
        mac = keyed.mac(f"{PSEUDONYM}:feistel:{i}", right)
        levels.append(
            sql.SQL(
                " CROSS JOIN LATERAL (SELECT {r} AS __pe_l, __pe_f{p}.__pe_l #"
                " (((get_byte({mac}, 0) << 8) | get_byte({mac}, 1)) & {m}) AS __pe_r OFFSET 0)"
                " AS __pe_f{i}"
            ).format(r=right, p=sql.SQL(str(i - 1)), mac=mac, m=mask, i=sql.SQL(str(i)))
        )
    last = sql.SQL(str(_FEISTEL_ROUNDS))
    return sql.SQL(
        "(SELECT ((__pe_f{n}.__pe_l << {h}) | __pe_f{n}.__pe_r) - {o} FROM {levels})::{t}"
    ).format(
        n=last,
        h=sql.Literal(half),
        o=sql.Literal(offset),
        levels=sql.Composed(levels),
        t=sql.SQL(type_name),
    )


def _date_shift(
    column: Column,
    shape: Shape,
    col: sql.Composable,
    key: sql.Composable,
    max_days: int,
    keyed: Macs,
) -> sql.Composable:
    # Shift by 1..max_days days, either way: never 0, which would copy the
    # original. Under a check against a date (born_on <= CURRENT_DATE), a
    # shift that breaks it goes the other way.
    nonzero = sql.SQL("((1 + {} % {}) * {})").format(
        keyed.draw("date_shift", key), sql.Literal(max(max_days, 1)), keyed.sign("date_shift", key)
    )
    # 24 hours, not 1 day: the same in UTC (every connection's time zone,
    # seeders.anonymise.session) and in a timestamp without one, and plain arithmetic
    # on microseconds instead of a round trip through the calendar.
    unit = sql.SQL("::integer" if column.category is Category.DATE else " * interval '24 hours'")
    up, down = (sql.SQL("({} {} {}{})").format(col, sql.SQL(op), nonzero, unit) for op in "+-")
    if not shape.times:
        return up
    fits = sql.SQL(" AND ").join(
        sql.SQL("{} {} {}").format(up, sql.SQL(_OPERATORS[op]), _time_bound(bound))
        for op, bound in shape.times
    )
    return sql.SQL("(CASE WHEN {} THEN {} ELSE {} END)").format(fits, up, down)


_OPERATORS = {op: op for op in ("<", "<=", ">", ">=")}
_CURRENT = {name: sql.SQL(name) for name in bounds.CURRENT_TIMES}


def _time_bound(bound: str) -> sql.Composable:
    """A check's date bound, rebuilt as a literal of a known type: never the target's text.

    The bound comes from the pull request's schema and the expression runs on
    the source, so only the forms seeders.anonymise.bounds reads are rebuilt, each from
    its parts; anything else is refused rather than passed through.
    """
    if bound in _CURRENT:
        return _CURRENT[bound]
    literal = bounds.time_literal(bound)
    if literal is None:
        raise ValueError(f"not a date bound: {bound!r}")
    value, type_name = literal
    return sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(type_name))


# Noise must not push a real out of its type.
_FLOAT4_MAX = sql.SQL("3.4028234e38::float8")


def _noise(
    column: Column, shape: Shape, col: sql.Composable, ratio: float, keyed: Macs
) -> sql.Composable:
    # factor = 1 + ratio * u with u uniform in [-1, 1] in steps of 1e-6,
    # clamped to what the column can hold; a result equal to the original
    # (rounding or the clamp ate the noise: a quantity of 1 always rounds
    # back) moves one step (see _moved_if_same), so the original never
    # survives. nullif/coalesce evaluate the noisy value once. Under a
    # range check (shape.low/high), noise that leaves the range is taken the
    # other way (1 - ratio * u): a value at a bound still moves, inwards.
    offset = sql.SQL("({} % 2000001 - 1000000)").format(keyed.draw("noise", col))
    inside = (shape.low, shape.high)
    if column.category is Category.FLOAT:
        ratio_literal = sql.Literal(ratio / 1_000_000)
        up, down = (
            sql.SQL("({} * (1 {} {} * {}::float8))").format(col, sql.SQL(op), offset, ratio_literal)
            for op in "+-"
        )
        noisy = _kept_inside(up, down, inside)
        if column.base_type == "float4":
            return sql.SQL("least(greatest({}, -{m}), {m})").format(noisy, m=_FLOAT4_MAX)
        return noisy
    scale = sql.Literal(Decimal(repr(ratio)) / 1_000_000)
    factors = [sql.SQL("(1 {} {} * {}::numeric)").format(sql.SQL(op), offset, scale) for op in "+-"]
    sign = keyed.sign("noise", col)
    if column.category is Category.INTEGER:
        limit = 1 << ((shape.bits or 64) - 1)
        up, down = (sql.SQL("round({} * {})").format(col, f) for f in factors)
        changed = sql.SQL("least(greatest({}, {}), {})::bigint").format(
            _kept_inside(up, down, inside), sql.Literal(-limit), sql.Literal(limit - 1)
        )
        return _moved_if_same(changed, col, 1, (-limit, limit - 1), sign, inside)
    decimals = shape.scale if shape.scale is not None else 2
    step = Decimal(10) ** -decimals
    up, down = (
        sql.SQL("round({} * {}, {})").format(col, f, sql.Literal(decimals)) for f in factors
    )
    kept = _kept_inside(up, down, inside)
    if shape.digits is None:
        return _moved_if_same(kept, col, step, None, sign, inside)
    bound = Decimal(10) ** shape.digits - step
    changed = sql.SQL("least(greatest({}, {}), {})").format(
        kept, sql.Literal(-bound), sql.Literal(bound)
    )
    return _moved_if_same(changed, col, step, (-bound, bound), sign, inside)


Range = tuple[Decimal | None, Decimal | None]


def _kept_inside(up: sql.Composable, down: sql.Composable, inside: Range) -> sql.Composable:
    """``up``, or ``down`` where ``up`` leaves the range; clamped to it if both do."""
    low, high = inside
    if low is None and high is None:
        return up
    outside = sql.SQL(" OR ").join(
        sql.SQL("{} {} {}").format(up, sql.SQL(op), sql.Literal(bound))
        for op, bound in (("<", low), (">", high))
        if bound is not None
    )
    picked: sql.Composable = sql.SQL("(CASE WHEN {} THEN {} ELSE {} END)").format(outside, down, up)
    if low is not None:
        picked = sql.SQL("greatest({}, {})").format(picked, sql.Literal(low))
    if high is not None:
        picked = sql.SQL("least({}, {})").format(picked, sql.Literal(high))
    return picked


def _moved_if_same(
    changed: sql.Composable,
    col: sql.Composable,
    step: int | Decimal,
    bounds: tuple[int | Decimal, int | Decimal] | None,
    sign: sql.Composable,
    inside: Range = (None, None),
) -> sql.Composable:
    """``changed``; where it is the original, the original one step up or down (keyed).

    Never across or onto zero from either side (a value within a step of
    zero moves away from it: 1 becomes 2, 0 becomes 1), so a sign check
    such as ``CHECK (quantity > 0)`` holds; never past the type's bounds,
    and inside the checks' range where one is known (at its top, down).
    """
    s = sql.Literal(step)
    either = sql.SQL("{c} + {sign} * {s}").format(c=col, sign=sign, s=s)
    positive = negative = either
    if bounds is not None:  # at a bound, the one way left
        low, high = bounds
        positive = sql.SQL("CASE WHEN {c} <= {hi} THEN {e} ELSE {c} - {s} END").format(
            c=col, hi=sql.Literal(high - step), e=either, s=s
        )
        negative = sql.SQL("CASE WHEN {c} >= {lo} THEN {e} ELSE {c} + {s} END").format(
            c=col, lo=sql.Literal(low + step), e=either, s=s
        )
    moved = sql.SQL(
        "CASE WHEN {c} > {s} THEN {positive} WHEN {c} >= 0 THEN {c} + {s}"
        " WHEN {c} < -{s} THEN {negative} ELSE {c} - {s} END"
    ).format(c=col, s=s, positive=positive, negative=negative)
    floor, ceiling = inside
    if floor is not None or ceiling is not None:
        fits = sql.SQL(" AND ").join(
            sql.SQL("{} {} {}").format(moved, sql.SQL(op), sql.Literal(bound))
            for op, bound in ((">=", floor), ("<=", ceiling))
            if bound is not None
        )
        up = sql.SQL("{c} + {s}").format(c=col, s=s)
        room = sql.SQL("{} <= {}").format(up, sql.Literal(ceiling)) if ceiling is not None else None
        moved = sql.SQL("CASE WHEN {} THEN {} WHEN {} THEN {} ELSE {} - {} END").format(
            fits, moved, room or sql.SQL("TRUE"), up, col, s
        )
    return sql.SQL("coalesce(nullif({}, {}), {})").format(changed, col, moved)


def _template(template: str, outputs: dict[str, sql.Composable]) -> sql.Composable:
    parts: list[sql.Composable] = []
    for literal, field_name, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(sql.Literal(literal))
        if field_name:
            parts.append(sql.SQL("coalesce(({})::text, '')").format(outputs[field_name]))
    return sql.SQL(" || ").join(parts) if parts else sql.Literal("")
