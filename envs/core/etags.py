"""GitHub answers kept with their ETags: what the client keeps and the store holds.

Here, below both, so that the store can keep them without importing the
GitHub client (and PyGithub with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CachedResponse:
    etag: str
    body: str  # JSON text of what the client kept of the answer


class ResponseCache(Protocol):
    def get(self, url: str) -> CachedResponse | None: ...

    def put(self, url: str, response: CachedResponse) -> None: ...
