"""A small real web app to preview: it migrates its database, then serves its rows.

What a preview environment must get right shows here: the app starts only
once its migrations ran against the preview's PostgreSQL (DATABASE_URL),
``/healthz`` answers 200 only then, and ``/`` lists the rows a seeder put in.
Standard library and psycopg 3 only, so its image is Debian's packages and
this folder.

    DATABASE_URL=postgresql://... python3 app.py     # listens on $PORT (8080)
"""

from __future__ import annotations

import html
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
VERSION = (HERE / "VERSION").read_text().strip()
SHOWN = 20  # rows per table on the page


def log(message: str) -> None:
    print(f"demo-app {VERSION}: {message}", file=sys.stderr, flush=True)


def connect(url: str, attempts: int = 60) -> psycopg.Connection:
    """The database may still be starting when the app does: wait, then give up loudly."""
    for attempt in range(1, attempts + 1):
        try:
            return psycopg.connect(url, connect_timeout=5, autocommit=True)
        except psycopg.OperationalError as exc:
            if attempt == attempts:
                raise
            log(f"database not reachable yet ({str(exc).strip()}); retrying")
            time.sleep(1)
    raise AssertionError("unreachable")


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply migrations/*.sql in name order, each once and in its own transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY)")
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for path in sorted((HERE / "migrations").glob("*.sql")):
        if path.name in done:
            continue
        with conn.transaction():
            conn.execute(path.read_text())  # type: ignore[arg-type]  # our own file
            conn.execute("INSERT INTO schema_migrations VALUES (%s)", (path.name,))
        applied.append(path.name)
        log(f"applied {path.name}")
    return applied


def snapshot(conn: psycopg.Connection) -> dict[str, object]:
    """Counts and the first rows of each table: what the page and /api/rows show."""
    customers = conn.execute(
        "SELECT id, name, email, city FROM customers ORDER BY id LIMIT %s", (SHOWN,)
    ).fetchall()
    orders = conn.execute(
        "SELECT id, customer_id, status::text, total::text FROM orders ORDER BY id LIMIT %s",
        (SHOWN,),
    ).fetchall()
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders)"
    ).fetchone()
    assert counts is not None
    return {
        "version": VERSION,
        "counts": {"customers": counts[0], "orders": counts[1]},
        "customers": [
            dict(zip(("id", "name", "email", "city"), r, strict=True)) for r in customers
        ],
        "orders": [
            dict(zip(("id", "customer_id", "status", "total"), r, strict=True)) for r in orders
        ],
    }


def page(data: dict[str, object]) -> str:
    """Seeded values are data, not markup: every one is escaped."""

    def table(rows: object) -> str:
        assert isinstance(rows, list)
        if not rows:
            return "<p>No rows.</p>"
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
            for row in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    counts = data["counts"]
    assert isinstance(counts, dict)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Demo shop</title></head><body>"
        f"<h1>Demo shop, version {html.escape(VERSION)}</h1>"
        f"<h2>Customers ({counts['customers']})</h2>{table(data['customers'])}"
        f"<h2>Orders ({counts['orders']})</h2>{table(data['orders'])}"
        "</body></html>"
    )


class Handler(BaseHTTPRequestHandler):
    url: str
    conn: psycopg.Connection

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            try:
                self._answer(path)
            except psycopg.OperationalError:
                # The server restarted under us (a redeploy of the database): one new
                # connection, one more try, before answering 503.
                Handler.conn = connect(self.url, attempts=1)
                self._answer(path)
        except psycopg.Error as exc:
            log(f"{path}: {exc}")
            self._send(503, "text/plain", "database unavailable\n")

    def _answer(self, path: str) -> None:
        if path == "/healthz":
            self.conn.execute("SELECT 1")
            self._send(200, "text/plain", "ok\n")
        elif path == "/api/rows":
            self._send(200, "application/json", json.dumps(snapshot(self.conn)))
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", page(snapshot(self.conn)))
        else:
            self._send(404, "text/plain", "not found\n")

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # stdlib's name
        if not self.path.startswith("/healthz"):
            log(format % args)


def main() -> None:
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("demo-app: DATABASE_URL is not set")
    conn = connect(url)
    migrate(conn)
    # One connection for every request thread (psycopg serialises them): enough
    # for a preview. Autocommit: a failed request leaves no transaction open. If
    # the database restarts, the next request reconnects.
    Handler.url, Handler.conn = url, conn
    # As PID 1 the process gets no default SIGTERM action: without this every
    # delete of the pod would wait out its whole grace period.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # a pod's only address
    server.daemon_threads = True
    log(f"serving on :{port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
