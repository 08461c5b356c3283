"""GitHub answers kept with their ETags, so the next request for them can be conditional."""

from __future__ import annotations

from envs.core.etags import CachedResponse
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
