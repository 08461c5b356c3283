"""Guessing which columns hold personal data, to start a rules file. Pure.

A guess, never a guarantee: the anonymiser copies nothing that has no rule,
so a missed column is refused rather than leaked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from seeders.schema import Category, Column

_NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("email", "email"), ("mail", "email"), ("phone", "phone_number"), ("mobile", "phone_number"),
    ("first_name", "first_name"), ("last_name", "last_name"), ("surname", "last_name"),
    ("full_name", "name"), ("name", "name"), ("address", "street_address"),
    ("street", "street_address"), ("city", "city"), ("zip", "postcode"), ("postcode", "postcode"),
    ("birth", "date_of_birth"), ("dob", "date_of_birth"), ("ssn", "ssn"), ("passport", "hash"),
    ("iban", "iban"), ("card", "hash"), ("ip", "ipv4"), ("username", "user_name"),
    ("login", "user_name"), ("password", "hash"), ("token", "hash"), ("secret", "hash"),
    ("lat", "noise"), ("lon", "noise"), ("tax", "hash"), ("salary", "noise"),
)  # fmt: skip
_VALUE_PATTERNS = (
    (re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I), "email"),
    (re.compile(r"^\+?[\d\s().-]{7,20}$"), "phone_number"),
    (re.compile(r"^\d{1,3}(\.\d{1,3}){3}$"), "ipv4"),
)


@dataclass(frozen=True)
class PiiGuess:
    column: str
    reason: str  # "name" or "values"
    suggestion: str  # a Faker provider, "hash" or "noise"


def guess(column: Column, samples: Sequence[str]) -> PiiGuess | None:
    """Why ``column`` may hold personal data, or None."""
    lowered = column.name.lower()
    if column.category in (
        Category.TEXT,
        Category.DATE,
        Category.INET,
        Category.NUMERIC,
        Category.FLOAT,
    ):
        for hint, suggestion in _NAME_HINTS:
            if re.search(rf"(^|_){hint}", lowered):
                return PiiGuess(column.name, "name", suggestion)
    texts = [s for s in samples if s]
    for pattern, suggestion in _VALUE_PATTERNS:
        if texts and sum(bool(pattern.match(s)) for s in texts) >= max(1, len(texts) // 2):
            return PiiGuess(column.name, "values", suggestion)
    return None
