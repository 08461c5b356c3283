"""Durable state: environments, operations journal, audit trail (SQLite or PostgreSQL)."""

from envs.store.store import NamespaceTaken, Store, open_store

__all__ = ["NamespaceTaken", "Store", "open_store"]
