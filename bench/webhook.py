"""Benchmark: signed webhook deliveries per second and time to the 202, with durable enqueue.

    .venv/bin/python bench/webhook.py [--deliveries 4000] [--concurrency 8]

For each state store (SQLite file, PostgreSQL server started here) it starts
``previewctl serve --workers 0`` as its own process and drives it from a
separate load process on loopback: GitHub's ``pull_request.synchronize``
example, signed, each delivery with a fresh ``X-GitHub-Delivery`` so every
one is verified, recorded, deduplicated and enqueued for real. The baseline,
measured in the same run with the same load process, is uvicorn serving an
app that answers 202 without reading anything: the floor of the HTTP stack,
so the ratio shows what signature checking and durable enqueue cost.

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port  # noqa: E402

SECRET = "bench-secret"


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


@contextmanager
def _server(args: list[str], env: dict[str, str], ready_path: str) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with log.open("w") as sink:
            proc = subprocess.Popen(
                [*args, "--port", str(port)], env=env, stdout=sink, stderr=sink, cwd=tmp
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base + ready_path, proc, log)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _load(base: str, deliveries: int, concurrency: int) -> dict[str, Any]:
    """Run the load in its own process so client and server never share an interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, "--load", base, str(deliveries), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _drive(base: str, deliveries: int, concurrency: int) -> dict[str, Any]:
    import httpx

    from envs.github import signature
    from tests.contract.github_contract import webhook_examples

    example = next(e for e in webhook_examples()["pull_request"] if e["action"] == "synchronize")
    body = json.dumps(example).encode()
    signed = signature.sign(SECRET.encode(), body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(deliveries):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one(_: int) -> None:
            headers = {
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": signed,
                "Content-Type": "application/json",
            }
            started = time.perf_counter()
            response = await client.post("/webhook", content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        async def worker() -> None:
            while not queue.empty():
                await one(queue.get_nowait())

        for _ in range(min(50, deliveries)):  # warm-up, not measured
            await one(-1)
        latencies.clear()
        statuses.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "deliveries": deliveries,
        "per_s": round(deliveries / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def _baseline_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: read the body, answer 202 with a small JSON body, nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    status = 200 if scope["path"] == "/healthz" else 202
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"queued":[1]}'})


def _count_jobs(state_url: str) -> int:
    from envs.store import open_store

    store = open_store(state_url)
    try:
        return sum(store.queue.counts().values())
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from tests.pg_server import running_server

    python = sys.executable
    from tests.cli_runner import child_env

    base_env = child_env({"PREVIEW_WEBHOOK_SECRET": SECRET})
    results: dict[str, Any] = {"bench": "webhook", "concurrency": args.concurrency}

    baseline_cmd = [python, __file__, "--baseline-server"]
    with _server(baseline_cmd, base_env, "/healthz") as base:
        results["baseline"] = _load(base, args.deliveries, args.concurrency)

    serve = [python, "-m", "envs.cli.main", "serve", "--workers", "0"]
    with tempfile.TemporaryDirectory() as tmp, running_server(durable=True) as pg:
        stores = {
            "sqlite": f"sqlite:///{tmp}/state.db",
            "postgresql": pg.create_database("bench_webhook"),
        }
        for name, url in stores.items():
            env = base_env | {"PREVIEW_STATE_URL": url, "PREVIEW_STATE_DIR": tmp}
            with _server(serve, env, "/readyz") as base:
                figures = _load(base, args.deliveries, args.concurrency)
            figures["jobs_in_store"] = _count_jobs(url)
            figures["ratio_vs_baseline"] = round(figures["per_s"] / results["baseline"]["per_s"], 3)
            results[name] = figures
            print(f"{name}: {figures}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--load":
        figures = asyncio.run(_drive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        print(json.dumps(figures))
    elif len(sys.argv) >= 2 and sys.argv[1] == "--baseline-server":
        import uvicorn

        port = int(sys.argv[sys.argv.index("--port") + 1])
        uvicorn.run(
            _baseline_app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    else:
        main()
