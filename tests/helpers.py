"""Small helpers shared by the tests and benchmarks that drive the service over HTTP."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from envs import signature


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 240) -> float:
    """Poll until ``condition`` holds; the seconds it took. Fails naming ``what``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def deliver(
    base: str, secret: bytes, event: str, payload: dict[str, Any] | bytes, timeout: float = 30
) -> httpx.Response:
    """POST one webhook delivery as GitHub does: signed, with a fresh delivery id."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.post(
        f"{base}/webhook",
        content=body,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature.sign(secret, body),
            "Content-Type": "application/json",
        },
        timeout=timeout,
    )
