"""GitHub's primary rate limit as last seen by a worker: what the store keeps for the metrics.

Here, below the store and the GitHub client, so the store can keep it without
importing PyGithub.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RateLimit:
    account: str  # the installation's owner (GitHub App), or "token"
    remaining: int
    limit: int
    resets_at: datetime
    seen_at: datetime
