"""The audit trail as a hash chain: each entry's hash covers its content and the hash
before it, so an entry edited, removed or slipped in afterwards breaks every link after
it. Pure: the store appends, ``previewctl audit verify`` checks.

What a chain cannot show is entries cut off its end: anchor the head (``audit verify``
prints it) somewhere the store's writers cannot edit, such as the CI log of the job that
exports the trail, and compare it with a later run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from envs.core.model import AuditEntry

GENESIS = "0" * 64  # the "previous hash" of the first entry of a chain


def link(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    repository: str | None,
    pr_number: int | None,
    detail: Mapping[str, Any],
) -> str:
    """The entry's hash: SHA-256 of one canonical JSON text of the previous hash and its fields.

    Canonical so that both stores give the same text: UTC time to the
    microsecond, detail keys sorted and no spaces (PostgreSQL's jsonb
    re-orders keys; the hash must not depend on it).
    """
    text = json.dumps(
        [
            prev_hash,
            at.astimezone(UTC).isoformat(timespec="microseconds"),
            actor,
            action,
            repository,
            pr_number,
            detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    return link(
        prev_hash,
        entry.at,
        entry.actor,
        entry.action,
        entry.repository,
        entry.pr_number,
        entry.detail,
    )


@dataclass(frozen=True)
class Verdict:
    checked: int  # chained entries whose links hold
    unchained: int  # entries from before the chain began (not covered)
    head: str | None  # the last entry's hash: anchor it elsewhere to detect truncation
    broken_at: int | None = None  # the id of the first entry whose link fails
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(entries: Iterable[AuditEntry]) -> Verdict:
    """Walk the entries in id order; the first that does not link to the one before fails."""
    checked = unchained = 0
    last: str | None = None
    for entry in entries:
        if entry.hash is None:
            if last is None:
                unchained += 1  # written before the chain began
                continue
            return Verdict(checked, unchained, last, entry.id, "its hash was removed")
        expected_prev = last or GENESIS
        if entry.prev_hash != expected_prev:
            why = "the entry before it was removed, or this one was inserted or moved"
            return Verdict(checked, unchained, last, entry.id, why)
        if entry_hash(entry, expected_prev) != entry.hash:
            return Verdict(checked, unchained, last, entry.id, "its content was changed")
        last = entry.hash
        checked += 1
    return Verdict(checked, unchained, last)
