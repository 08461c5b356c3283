"""Connections an anonymised copy runs on, opened for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


@contextmanager
def copy_connections(source: str, target: str) -> Iterator[tuple[Any, Any, Any]]:
    """What an anonymised copy runs on: the source, the target, and the target's scratch."""
    with (
        psycopg.connect(source, autocommit=True) as src,
        psycopg.connect(target, autocommit=True) as dst,
        psycopg.connect(target, autocommit=True) as scratch,
    ):
        yield src, dst, scratch
