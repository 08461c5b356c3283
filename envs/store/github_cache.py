"""What the store keeps of GitHub: answers with their ETags, so the next request for them
can be conditional, and the rate limit the workers last saw."""

from __future__ import annotations

from envs.core.etags import CachedResponse
from envs.core.model import required_time
from envs.core.rate_limits import RateLimit
from envs.store.connector import Connector


class GitHubResponses:
    """The :class:`envs.github.client.ResponseCache` of the state store, shared by every process."""

    def __init__(self, connector: Connector) -> None:
        self._db = connector

    def get(self, url: str) -> CachedResponse | None:
        rows = self._db.fetch("get_github_response", {"url": url})
        return CachedResponse(rows[0]["etag"], rows[0]["body"]) if rows else None

    def put(self, url: str, response: CachedResponse) -> None:
        self._db.fetch(
            "save_github_response", {"url": url, "etag": response.etag, "body": response.body}
        )

    def save_rate_limit(self, seen: RateLimit) -> None:
        """Keep the newest sighting per account (a slower worker never writes an older one)."""
        self._db.fetch(
            "save_rate_limit",
            {
                "account": seen.account,
                "remaining": seen.remaining,
                "rate_limit": seen.limit,
                "resets_at": seen.resets_at,
                "seen_at": seen.seen_at,
            },
        )

    def rate_limits(self) -> list[RateLimit]:
        return [
            RateLimit(
                account=row["account"],
                remaining=int(row["remaining"]),
                limit=int(row["rate_limit"]),
                resets_at=required_time(row["resets_at"]),
                seen_at=required_time(row["seen_at"]),
            )
            for row in self._db.fetch("list_rate_limits", {})
        ]
