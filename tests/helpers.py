"""Small helpers shared by the tests and benchmarks that drive the service over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from envs.github import signature


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


def session_members(session: int) -> list[int]:
    """The live processes of a session (a ``start_new_session`` child's pid is its id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        state, _ppid, _group, member_of = stat[stat.rindex(")") + 2 :].split()[:4]
        if int(member_of) == session and state != "Z":
            found.append(int(entry.name))
    return found


def kill_session(session: int) -> None:
    """SIGKILL every process of a session, as a pod's eviction ends all of its processes.

    Killing the child's process group is not enough: the Pulumi CLI starts
    each plugin in a group of its own, and a provider left running would
    hold its port and its files long after the test.
    """
    for pid in session_members(session):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not session_members(session), f"every process of session {session} to end")


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
