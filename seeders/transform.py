"""Deterministic value transformers for anonymisation. Pure.

Every transformer is keyed by an HMAC-SHA256 of the original value under a
secret salt: the same value gives the same output in every table and every
run (so a pseudonymised key still joins its foreign keys), and without the
salt the output says nothing about the input. Values arrive and leave in
COPY text format; NULL stays NULL.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from seeders.rules import Rule
from seeders.schema import Category, Column
from seeders.values import NULL, escape, faker_pool

Transform = Callable[[str, dict[str, str]], str]  # (value, row outputs by column) -> value
_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def unescape(text: str) -> str:
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


class Keyed:
    """HMAC digests under the run's salt; the root of every transformer."""

    def __init__(self, salt: bytes) -> None:
        self._key = salt

    def digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()

    def number(self, purpose: str, value: str) -> int:
        return int.from_bytes(self.digest(purpose, value)[:8], "big")


def _fit(text: str, column: Column) -> str:
    return text if column.max_length is None else text[: column.max_length]


def _unique_suffix(text: str, tag: str, column: Column) -> str:
    """Append a digest tag, keeping e-mail addresses shaped like e-mail addresses."""
    local, at, domain = text.partition("@")
    candidate = f"{local}.{tag}@{domain}" if at else f"{text}-{tag}"
    if column.max_length is not None and len(candidate) > column.max_length:
        candidate = tag[: column.max_length]
    return candidate


def build(
    column: Column, rule: Rule, keyed: Keyed, unique: bool, row_key: str | None = None
) -> Transform | None:
    """The transform for one column, or None for ``keep`` (copied without parsing).

    ``row_key`` names the column whose original value keys a per-row
    transform (date_shift), so every date of a row moves by the same amount
    and created_at <= updated_at still holds.
    """
    kind, opts = rule.kind, rule.options
    if kind == "keep":
        return None
    if kind == "null":
        return lambda value, row: NULL
    if kind == "constant":
        constant = escape(str(opts["value"]))
        return lambda value, row: value if value == NULL else constant
    if kind in ("mask", "redact"):
        return _mask(column, opts if kind == "mask" else {}, keyed, unique)
    if kind == "fake":
        return _fake(column, str(opts["provider"]), keyed, unique)
    if kind == "hash":
        return _hash(column, int(opts.get("length", 16)), keyed)
    if kind == "date_shift":
        return _date_shift(column, int(opts.get("max_days", 30)), keyed, opts.get("by", row_key))
    if kind == "noise":
        return _noise(column, float(opts["ratio"]), keyed)
    if kind == "template":
        template = str(opts["template"])
        return lambda value, row: (
            value
            if value == NULL
            else _fit(escape(template.format(**{k: unescape(v) for k, v in row.items()})), column)
        )
    raise ValueError(f"unknown rule {kind!r}")


def _mask(
    column: Column, opts: dict[str, object] | object, keyed: Keyed, unique: bool
) -> Transform:
    options: dict[str, Any] = opts if isinstance(opts, dict) else {}
    first = int(options.get("keep_first", 0))
    last = int(options.get("keep_last", 0))
    char = str(options.get("char", "*"))[:1] or "*"

    def mask(value: str, row: dict[str, str]) -> str:
        if value == NULL:
            return value
        text = unescape(value)
        keep_last = min(last, max(len(text) - first, 0))
        hidden = max(len(text) - first - keep_last, 0)
        masked = text[:first] + char * hidden + (text[len(text) - keep_last :] if keep_last else "")
        if unique:
            masked = _unique_suffix(masked, f"{keyed.number('mask', value):x}"[:8], column)
        return _fit(escape(masked), column)

    return mask


def _fake(column: Column, provider: str, keyed: Keyed, unique: bool) -> Transform:
    pool = faker_pool(provider, 0)

    def fake(value: str, row: dict[str, str]) -> str:
        if value == NULL:
            return value
        n = keyed.number(provider, value)
        out = _fit(pool[n % len(pool)], column)
        if unique or out == value:  # never hand back the original, even by chance
            out = _fit(escape(_unique_suffix(unescape(out), f"{n:016x}"[:8], column)), column)
        return out

    return fake


def _hash(column: Column, length: int, keyed: Keyed) -> Transform:
    if column.category is Category.INTEGER:
        # 62 bits: a positive bigint; collisions need ~2^31 distinct values.
        return lambda value, row: value if value == NULL else str(keyed.number("hash", value) >> 2)
    if column.category is Category.UUID:

        def as_uuid(value: str, row: dict[str, str]) -> str:
            if value == NULL:
                return value
            h = keyed.digest("hash", value).hex()
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

        return as_uuid
    width = max(8, min(length, 64, column.max_length or 64))
    return lambda value, row: value if value == NULL else keyed.digest("hash", value).hex()[:width]


def _date_shift(column: Column, max_days: int, keyed: Keyed, by: object) -> Transform:
    span = 2 * max_days + 1
    key_column = str(by) if by else None

    def shift(value: str, row: dict[str, str]) -> str:
        if value == NULL:
            return value
        key = row[key_column] if key_column else value
        days = keyed.number("date_shift", key) % span - max_days
        days = days or 1  # a shift of zero would copy the original
        if column.category is Category.DATE:
            return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
        parsed = datetime.fromisoformat(value)
        return (parsed + timedelta(days=days)).isoformat(sep=" ")

    return shift


def _noise(column: Column, ratio: float, keyed: Keyed) -> Transform:
    def noise(value: str, row: dict[str, str]) -> str:
        if value == NULL:
            return value
        unit = (keyed.number("noise", value) % 2_000_001) / 1_000_000 - 1  # [-1, 1]
        factor = 1 + ratio * unit
        if column.category is Category.INTEGER:
            original = int(value)
            changed = round(original * factor)
            return str(changed if changed != original else original + 1)
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        exponent = number.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        changed_value = Decimal(float(number) * factor).quantize(Decimal(1).scaleb(-places))
        if changed_value == number:
            changed_value += Decimal(1).scaleb(-places)
        return str(changed_value)

    return noise
