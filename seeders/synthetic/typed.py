"""Values of the built-in types that are not text, numbers or times (pure).

Application schemas use them more than one would think: a ``point`` for a
shop's location, a ``tstzrange`` for a booking, a ``tsvector`` kept for
search, a ``macaddr`` for a device. Each pool holds plausible values of
the type in its COPY text form; a type with none here is one the seeder
cannot invent (:func:`seeders.synthetic.values.can_invent`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

from seeders.schema.model import Column

SIZE = 1000
_WORDS = (
    "alpha", "bravo", "delta", "echo", "harbour", "meadow", "orbit", "pepper", "quartz",
    "river", "summit", "timber", "velvet", "willow", "yonder", "zephyr",
)  # fmt: skip
_EPOCH = datetime(2024, 1, 1)


def _points(_column: Column, rng: random.Random) -> list[str]:
    # Longitude, latitude: somewhere on Earth.
    return [f"({rng.uniform(-180, 180):.5f},{rng.uniform(-90, 90):.5f})" for _ in range(SIZE)]


def _search_vectors(_column: Column, rng: random.Random) -> list[str]:
    def one() -> str:
        words = rng.sample(_WORDS, k=rng.randint(1, 4))
        return " ".join(f"'{w}':{i}" for i, w in enumerate(sorted(words), start=1))

    return [one() for _ in range(SIZE)]


def _mac(octets: int) -> Callable[[Column, random.Random], list[str]]:
    def pool(_column: Column, rng: random.Random) -> list[str]:
        # Locally administered unicast addresses: never a real vendor's.
        def one() -> str:
            first = (rng.getrandbits(8) | 0x02) & 0xFE
            rest = [rng.getrandbits(8) for _ in range(octets - 1)]
            return ":".join(f"{b:02x}" for b in (first, *rest))

        return [one() for _ in range(SIZE)]

    return pool


def _range(low: object, high: object) -> str:
    """``[low,high)``; times quoted, as their text holds a space."""
    if isinstance(low, datetime):
        return f'["{low}","{high}")'
    return f"[{low},{high})"


def _ranges(
    ends: Callable[[random.Random], tuple[object, object]],
) -> Callable[[Column, random.Random], list[str]]:
    def pool(_column: Column, rng: random.Random) -> list[str]:
        return [_range(*ends(rng)) for _ in range(SIZE)]

    return pool


def _integer_ends(rng: random.Random) -> tuple[object, object]:
    low = rng.randrange(0, 10_000)
    return low, low + rng.randrange(1, 500)


def _numeric_ends(rng: random.Random) -> tuple[object, object]:
    low = round(rng.uniform(0, 1000), 2)
    return f"{low:.2f}", f"{low + rng.uniform(0.01, 100):.2f}"


def _date_ends(rng: random.Random) -> tuple[object, object]:
    start = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 730))
    return start, start + timedelta(days=rng.randrange(1, 30))


def _time_ends(zone: timezone | None) -> Callable[[random.Random], tuple[object, object]]:
    def ends(rng: random.Random) -> tuple[object, object]:
        start = _EPOCH.replace(tzinfo=zone) + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400))
        return start, start + timedelta(minutes=rng.randrange(15, 600))

    return ends


def _xml(_column: Column, rng: random.Random) -> list[str]:
    return [f'<note id="{i}">{rng.choice(_WORDS)}</note>' for i in range(SIZE)]


def _key_values(_column: Column, rng: random.Random) -> list[str]:
    """``hstore`` (its contrib extension): a few keys and values, as its text form writes them."""
    keys = ("colour", "size", "origin", "grade", "batch")
    return [
        ", ".join(
            f'"{k}"=>"{rng.choice(_WORDS)}"' for k in sorted(rng.sample(keys, rng.randint(1, 3)))
        )
        for _ in range(SIZE)
    ]


def _label_paths(_column: Column, rng: random.Random) -> list[str]:
    """``ltree`` (its contrib extension): a path of labels, Top.Science.Astronomy."""
    return [
        ".".join(w.capitalize() for w in rng.sample(_WORDS, rng.randint(1, 4))) for _ in range(SIZE)
    ]


def _bits(column: Column, rng: random.Random) -> list[str]:
    """``bit(n)`` takes exactly n bits; ``bit varying(n)`` up to n (8 when unlimited)."""
    width = column.max_length or (1 if column.base_type == "bit" else 8)
    out = []
    for _ in range(SIZE):
        n = width if column.base_type == "bit" else rng.randint(1, width)
        out.append("".join(rng.choice("01") for _ in range(n)))
    return out


# pg_type name of the type (a domain's: its base type's) → its pool.
POOLS: dict[str, Callable[[Column, random.Random], list[str]]] = {
    "point": _points,
    "tsvector": _search_vectors,
    "macaddr": _mac(6),
    "macaddr8": _mac(8),
    "int4range": _ranges(_integer_ends),
    "int8range": _ranges(_integer_ends),
    "numrange": _ranges(_numeric_ends),
    "daterange": _ranges(_date_ends),
    "tsrange": _ranges(_time_ends(None)),
    "tstzrange": _ranges(_time_ends(UTC)),
    "xml": _xml,
    "bit": _bits,
    "varbit": _bits,
    "hstore": _key_values,
    "ltree": _label_paths,
}


RANGES = frozenset({"int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange"})


def disjoint(column: Column, n: int, rng: random.Random) -> list[str]:
    """``n`` ranges no two of which overlap, in no particular order.

    What an exclusion constraint over the column (``during WITH &&``)
    needs, whatever its other columns hold: each range has a slot of its own.
    """
    slots = list(range(n))
    rng.shuffle(slots)
    kind = column.base_type
    out = []
    for slot in slots:
        low: object
        high: object
        if kind in ("int4range", "int8range"):
            low, high = slot * 10, slot * 10 + rng.randint(1, 9)
        elif kind == "numrange":
            low, high = f"{slot * 10}.00", f"{slot * 10 + rng.uniform(0.01, 9.99):.2f}"
        elif kind == "daterange":
            low = date(2000, 1, 1) + timedelta(days=2 * slot)
            high = low + timedelta(days=1)
        else:
            zone = UTC if kind == "tstzrange" else None
            low = _EPOCH.replace(tzinfo=zone) + timedelta(hours=slot)
            high = low + timedelta(minutes=rng.randrange(15, 60))
        out.append(_range(low, high))
    return out
