"""Column values for synthetic data, generated a column at a time, fast.

Calling Faker once per value is about 100 times slower than PostgreSQL can
load. So Faker fills a small *pool* per kind of value once (a thousand
names, addresses, ...), pools are escaped for COPY's text format once, and a
column of N values is drawn from its pool with ``random.choices`` (C speed).
Unique columns append the row number to a pooled value, which makes them
unique by construction instead of by retrying.

Every function here is deterministic for a given ``random.Random`` state.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import islice, product

from faker import Faker

from seeders.schema import meanings
from seeders.schema.model import INTEGER_BITS, Category, Column
from seeders.synthetic import date_order, typed

NULL = "\\N"
POOL_SIZE = 1000
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
Values = list[str]


class CannotGenerate(ValueError):
    """A column whose type we cannot invent values for (and which is NOT NULL)."""


def escape(text: str) -> str:
    """COPY text-format escaping (backslash, tab, newline, carriage return)."""
    if "\\" not in text and "\t" not in text and "\n" not in text and "\r" not in text:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def unescape(text: str) -> str:
    """Inverse of :func:`escape`."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _UNESCAPES:
            out.append(_UNESCAPES[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mixed_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed of the run's seed and what it is for: independent streams, same data."""
    digest = hashlib.sha256("\0".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@cache
def faker_pool(provider: str, seed: int = 0, size: int = POOL_SIZE) -> tuple[str, ...]:
    """``size`` values of one Faker provider, escaped; cached per (provider, seed).

    Each provider draws from its own stream: seeded alike, a one-sentence
    ``paragraph`` came out as the ``sentence`` pool's, and an anonymised copy
    of seeded data found a bio's original in a post's title.
    """
    fake = Faker()
    fake.seed_instance(mixed_seed(seed, provider))
    method: Callable[[], object] = getattr(fake, provider)
    return tuple(escape(str(method()).replace("\n", ", ")) for _ in range(size))


@cache
def is_faker_provider(name: str) -> bool:
    """Whether Faker has a provider of this name (a Faker costs ~2 ms to build: once a name)."""
    return callable(getattr(Faker(), name, None)) and not name.startswith("_")


# Providers of identifiers and of prose: no two columns share a value of these (a
# password's digest is no blob's checksum, a bio no post's body), so an anonymised copy
# of seeded data finds no original of one column in another. Names, cities, words are
# shared, as real data shares them.
_OWN_POOLS = frozenset(
    {"sha256", "sha1", "md5", "password", "uuid4", "iban", "bban", "ssn", "credit_card_number",
     "passport_number", "paragraph", "sentence", "text"}
)  # fmt: skip


def _pool_seed(provider: str, seed: int, table: str, column: Column) -> int:
    """The seed of a column's pool: the run's, or for an identifier's its own column's."""
    return mixed_seed(seed, table, column.name) if provider in _OWN_POOLS else seed


# Providers a domain's name is too loose to imply (a domain "short_text" is not a sentence).
_VAGUE = frozenset({"name", "sentence", "paragraph"})


def text_provider(column: Column, table: str = "") -> str:
    """The Faker provider a text column's name (and its table's, for a bare ``name``) suggests."""
    lowered = column.name.lower()
    if "country" in lowered and column.max_length is not None and column.max_length <= 3:
        return "country_code"
    if lowered == "name" and meanings.organisations(table):
        return "company"
    if lowered == "name" and meanings.things(table):
        return "catch_phrase"
    for meaning in meanings.meanings_of(column.name):
        if meaning.fake is not None:
            return meaning.fake
    domain = column.domain_name  # a domain says what it holds as a name does
    for meaning in meanings.meanings_of(domain) if domain else ():
        if meaning.fake is not None and meaning.fake not in _VAGUE:
            return meaning.fake
    return "word"


def _fit(values: Sequence[str], max_length: int | None) -> Values:
    if max_length is None:
        return list(values)
    return [v[:max_length] for v in values]


def unique_text(pool: Sequence[str], n: int, rng: random.Random, max_length: int | None) -> Values:
    """Pooled values made unique by a row-number suffix (kept within max_length)."""
    picks = rng.choices(pool, k=n)
    if any(p.count("@") == 1 for p in pool[:10]):  # keep emails looking like emails
        out = []
        for i, p in enumerate(picks):
            local, _, domain = p.partition("@")
            out.append(f"{local}.{i}@{domain}")
    else:
        out = [f"{p}-{i}" for i, p in enumerate(picks)]
    if max_length is not None and any(len(v) > max_length for v in out):
        return codes(n, max_length)
    return out


def hex_tokens(n: int, rng: random.Random, max_length: int | None) -> Values:
    """Distinct random-looking hex (tokens, digests): 8 digits that are the row number
    scrambled (an odd multiplier permutes 32 bits, so no two rows share them), then random.

    A row-number code where 8 digits do not fit.
    """
    width = min(64, max_length or 64)
    if width < 8 or n > 1 << 32:
        return codes(n, max_length)
    mask = rng.getrandbits(32)
    return [
        f"{(i * 0x9E3779B1 & 0xFFFFFFFF) ^ mask:08x}"
        + (f"{rng.getrandbits(4 * (width - 8)):0{width - 8}x}" if width > 8 else "")
        for i in range(n)
    ]


def codes(n: int, max_length: int | None, prefix: str = "") -> Values:
    """Unique compact codes (base 36), the shortest that fit n rows."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    width = 1
    while 36**width < n:
        width += 1
    if max_length is not None and len(prefix) + width > max_length:
        prefix = ""
        if width > max_length:
            raise CannotGenerate(f"{n} unique values do not fit in {max_length} characters")
    # Counting in base 36, most significant digit first, zero-padded.
    return [prefix + "".join(code) for code in islice(product(digits, repeat=width), n)]


# Words that make an integer column an enum's code: a Rails ``enum status: {draft: 0, …}``
# maps 0..n; 37 is no state the app knows.
_CODED = frozenset({"status", "state", "kind", "type", "role", "level", "priority", "stage",
                    "tier", "visibility", "mode", "category"})  # fmt: skip
# Flags most rows have set: users are mostly active, e-mails mostly confirmed.
_MOSTLY_SET = frozenset({"active", "enabled", "verified", "confirmed", "published", "visible",
                         "approved", "valid", "available"})  # fmt: skip


def booleans(column: Column, n: int, rng: random.Random) -> Values:
    """A flag by its name: true in a few rows for a rare event (``archived``), in most where
    rows mostly have it (``active``), else in either."""
    share = 0.5
    if date_order.rare(column):
        share = 1 - date_order.RARE_BLANK
    elif set(meanings.words(column.name)) & _MOSTLY_SET:
        share = 0.8
    return ["t" if rng.random() < share else "f" for _ in range(n)]


def integers(column: Column, n: int, rng: random.Random, unique: bool) -> Values:
    # By the base type: a domain over smallint holds what a smallint does.
    top = (1 << (INTEGER_BITS.get(column.base_type, 64) - 1)) - 1
    if unique:
        if n > top:
            raise CannotGenerate(
                f"column {column.name}: {n} unique values do not fit in {column.type_name}"
                f" (at most {top}); lower the table's rows"
            )
        return [str(i) for i in range(1, n + 1)]
    named = set(meanings.words(column.name))
    high = min(top, 100_000)
    low = 0
    if named & {"quantity", "qty", "count", "stock", "position", "rank", "order"}:
        high = 100
    elif named & _CODED:  # an app's enum stored as a number (Rails, Django choices): 0, 1, 2, 3
        high = 3
    elif "version" in named:  # lock_version: rows are edited a few times
        high = 5
    elif "age" in named:
        low, high = 18, 90
    elif "year" in named:
        low, high = 1990, 2026
    pool = [str(v) for v in range(low, high + 1)] if high - low <= 10_000 else None
    if pool is not None:
        return rng.choices(pool, k=n)
    return [str(rng.randint(low, high)) for _ in range(n)]


def numerics(column: Column, n: int, rng: random.Random, unique: bool) -> Values:
    scale = column.numeric_scale if column.numeric_scale is not None else 2
    precision = column.numeric_precision
    high = 1000.0
    if precision is not None:
        high = min(high, float(10 ** (precision - scale)) - 1)
    quantum = Decimal(1).scaleb(-scale)
    pool = [
        str(Decimal(rng.uniform(0.5, max(high, 1))).quantize(quantum)) for _ in range(POOL_SIZE)
    ]
    if unique:
        return [str(i) for i in range(1, n + 1)]
    return rng.choices(pool, k=n)


def floats(n: int, rng: random.Random) -> Values:
    pool = [f"{rng.uniform(0, 1000):.3f}" for _ in range(POOL_SIZE)]
    return rng.choices(pool, k=n)


def timestamps(n: int, rng: random.Random, category: Category, unique: bool = False) -> Values:
    """ISO timestamps within two years of EPOCH; distinct seconds if ``unique``."""
    span = 2 * 365 * 86400
    if unique:
        return render_times(rng.sample(range(max(span, n)), n), category)
    return render_times([rng.randrange(0, span) for _ in range(n)], category)


def render_times(offsets: Sequence[int], category: Category) -> Values:
    base = EPOCH if category is Category.TIMESTAMPTZ else EPOCH.replace(tzinfo=None)
    return [(base + timedelta(seconds=s)).isoformat(sep=" ") for s in offsets]


def date_pool() -> list[str]:
    """Every date the seeder writes: five years from 2021."""
    start = date(2021, 1, 1).toordinal()
    return [date.fromordinal(start + d).isoformat() for d in range(5 * 365)]


def dates(n: int, rng: random.Random, unique: bool = False) -> Values:
    """Dates of the pool's five years; if ``unique``, distinct days (more years for more rows)."""
    if not unique:
        return rng.choices(date_pool(), k=n)
    start = date(2021, 1, 1).toordinal()
    if n > date.max.toordinal() - start:
        raise CannotGenerate(f"{n} unique dates do not fit between 2021 and 9999")
    days = rng.sample(range(max(5 * 365, n)), n)
    return [date.fromordinal(start + d).isoformat() for d in days]


def uuids(n: int, rng: random.Random) -> Values:
    out = []
    for _ in range(n):
        h = f"{rng.getrandbits(128):032x}"
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}")
    return out


def json_values(n: int, rng: random.Random, seed: int, owner: str = "") -> Values:
    """Small documents; each column (``owner``: table and column) numbers its own.

    Had two columns the same documents, an anonymised copy of seeded data
    would find a kept one's among a nulled one's originals: a false leak.
    """
    words = faker_pool("word", seed)
    first = POOL_SIZE * (mixed_seed(seed, "json", owner) % 1_000_000) if owner else 0
    pool = [
        escape(json.dumps({"source": "synthetic", "rank": first + i, "tag": words[i % len(words)]}))
        for i in range(POOL_SIZE)
    ]
    return rng.choices(pool, k=n)


def _quoted(item: str) -> str:
    """An array item or a record field in double quotes, its quotes and backslashes escaped."""
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(items: Sequence[str]) -> str:
    """A PostgreSQL array literal of text items (quoted, escaped)."""
    return "{" + ",".join(_quoted(i) for i in items) + "}"


def record_literal(fields: Sequence[str]) -> str:
    """A PostgreSQL row literal of text fields: ``("1 Main St","Springfield")``.

    Every field quoted, so a comma, parenthesis or space in one is its own.
    """
    return "(" + ",".join(_quoted(f) for f in fields) + ")"


def records(column: Column, rng: random.Random, seed: int) -> Values:
    """A pool of a composite type's values, each field one of its own name and type.

    A field is read with the column's name as its table's: ``name`` in a
    column ``company`` of type ``party`` is a company's.
    """
    drawn = [
        [unescape(v) for v in generate(f, POOL_SIZE, rng, seed, unique=False, table=column.name)]
        for f in column.fields
    ]
    return [escape(record_literal(row)) for row in zip(*drawn, strict=True)]


def pooled(pool: Sequence[str], n: int, rng: random.Random) -> Values:
    return rng.choices(pool, k=n)


def scalar_pool(  # noqa: PLR0912
    column: Column, rng: random.Random, seed: int, table: str = ""
) -> Sequence[str]:
    """A pool of plain (non-unique) values for a column's element type."""
    c = column.category
    if column.fields:
        return records(column, rng, seed)
    if c is Category.TEXT:
        return _fit(faker_pool(text_provider(column, table), seed), column.max_length)
    if c is Category.ENUM:
        return column.enum_values
    if c is Category.INTEGER:
        return [str(v) for v in range(0, 1000)]
    if c in (Category.NUMERIC, Category.FLOAT):
        return [f"{rng.uniform(0, 1000):.2f}" for _ in range(POOL_SIZE)]
    if c is Category.BOOLEAN:
        return ["t", "f"]
    if c is Category.DATE:
        return dates(POOL_SIZE, rng)
    if c in (Category.TIMESTAMP, Category.TIMESTAMPTZ):
        return timestamps(POOL_SIZE, rng, c)
    if c is Category.UUID:
        return uuids(POOL_SIZE, rng)
    if c is Category.JSON:
        return json_values(POOL_SIZE, rng, seed, f"{table}.{column.name}")
    if c is Category.INET:
        return [f"192.0.2.{i}" for i in range(1, 255)]  # TEST-NET-1: never a real host
    if c is Category.TIME:
        return [f"{h:02d}:{m:02d}:00" for h in range(24) for m in range(0, 60, 5)]
    if c is Category.INTERVAL:
        return [f"{m} minutes" for m in range(1, 600)]
    if c is Category.BYTEA:
        return [f"\\\\x{rng.getrandbits(64):016x}" for _ in range(POOL_SIZE)]
    if column.base_type in typed.POOLS:
        return [escape(v) for v in typed.POOLS[column.base_type](column, rng)]
    raise CannotGenerate(
        f"column {column.name} has type {column.type_name}, which the synthetic seeder cannot "
        "invent; give it an override (values: [...]) in the seed config"
    )


def can_invent(column: Column) -> bool:
    """Whether the seeder has values of the column's type (an unknown type's it has not)."""
    if column.category is not Category.OTHER:
        return True
    if column.fields:  # arrays of them too: a pool of records is a pool like any
        return all(can_invent(f) for f in column.fields)
    return not column.is_array and column.base_type in typed.POOLS


def arrays(column: Column, n: int, rng: random.Random, seed: int, table: str = "") -> Values:
    pool = scalar_pool(column, rng, seed, table)
    unescaped = [unescape(p) for p in pool]  # pools are COPY-escaped; array items are not
    literals = [escape(array_literal(rng.sample(unescaped, k=min(len(unescaped), 1 + i % 3))))
                for i in range(POOL_SIZE)]  # fmt: skip
    return rng.choices(literals, k=n)


def generate(
    column: Column, n: int, rng: random.Random, seed: int, unique: bool, table: str = ""
) -> Values:
    """N values for one column of ``table``, by category and name; unique when asked."""
    c = column.category
    if column.is_array:
        return arrays(column, n, rng, seed, table)
    if c is Category.INTEGER:
        return integers(column, n, rng, unique)
    if c is Category.BOOLEAN and not unique:
        return booleans(column, n, rng)
    if c is Category.NUMERIC:
        return numerics(column, n, rng, unique)
    if c is Category.TEXT:
        return _texts(column, n, rng, seed, unique, table)
    if c is Category.UUID:
        return uuids(n, rng)
    if c in (Category.TIMESTAMP, Category.TIMESTAMPTZ):
        return timestamps(n, rng, c, unique)
    if c is Category.DATE:
        return dates(n, rng, unique)
    if c is Category.FLOAT:
        return floats(n, rng)
    if unique and column.base_type in typed.RANGES:  # no two overlap
        return [escape(v) for v in typed.disjoint(column, n, rng)]
    if unique:
        raise CannotGenerate(f"column {column.name}: cannot make unique {column.type_name} values")
    return pooled(scalar_pool(column, rng, seed, table), n, rng)


def _texts(
    column: Column, n: int, rng: random.Random, seed: int, unique: bool, table: str
) -> Values:
    provider = text_provider(column, table)
    if unique and provider == "word":
        return codes(n, column.max_length, prefix=column.name[:3])
    if unique and provider == "sha256":
        return hex_tokens(n, rng, column.max_length)
    pool = _fit(faker_pool(provider, _pool_seed(provider, seed, table, column)), column.max_length)
    return unique_text(pool, n, rng, column.max_length) if unique else pooled(pool, n, rng)


def with_nulls(values: Values, rng: random.Random, fraction: float = 0.1) -> Values:
    """Blank out about ``fraction`` of a nullable column, as real data has gaps."""
    threshold = int(fraction * 1000)
    return [NULL if rng.randrange(1000) < threshold else v for v in values]
