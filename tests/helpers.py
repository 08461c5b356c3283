"""Small helpers shared by the tests and benchmarks that drive the service over HTTP."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from envs import signature


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    condition: Callable[[], bool],
    what: str,
    timeout: float = 240,
    evidence: Callable[[], str] | None = None,
) -> float:
    """Poll until ``condition`` holds; the seconds it took.

    A timeout fails naming ``what`` and, when given, with ``evidence()`` (a
    process's log, say): a CI failure has to be explainable from its output.
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            found = f"\n{evidence()}" if evidence else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{found}")
        time.sleep(0.05)
    return time.monotonic() - started


def log_tail(path: Path, lines: int = 80) -> str:
    """The end of a child process's log, for a failure message."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} was never written)"
    return f"--- last {lines} lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


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
