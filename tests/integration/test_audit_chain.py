"""The audit trail's hash chain on both stores: appends from several writers at once stay
one chain, and an entry edited, removed or slipped in is found by ``audit verify``."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from envs.core.audit_chain import verify
from envs.core.model import EnvironmentKey
from envs.store import Store, open_store
from tests.cli_runner import run_previewctl

T0 = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)
KEY = EnvironmentKey("acme/shop", 7)


def _url(store: Store, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if store.dialect == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return str(request.getfixturevalue("pg_url"))


def _sql(url: str) -> Callable[[str], None]:
    """Run SQL behind the store's back, as someone with write access to its database."""

    def run(statement: str) -> None:
        if url.startswith("sqlite"):
            with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
                conn.execute(statement)
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(statement.encode())

    return run


def test_writers_at_once_make_one_chain_that_verifies(
    store: Store, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _url(store, tmp_path, request)

    def write(worker: int) -> None:
        own = open_store(url)
        try:
            for n in range(15):
                detail = {"worker": worker, "n": n, "price": 1.5, "név": "ünïcode", "z": [1, {}]}
                own.audit(f"w{worker}", "up.succeeded", T0 + timedelta(seconds=n), KEY, detail)
        finally:
            own.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdict = verify(store.audit_chain(batch=7))  # several batches
    assert verdict.ok, verdict
    assert (verdict.checked, verdict.unchained) == (60, 0)
    entries = list(store.audit_chain())
    assert verdict.head == entries[-1].hash
    assert len({e.prev_hash for e in entries}) == 60, "no two entries link to the same one"


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        ("UPDATE audit_log SET actor = 'someone-else' WHERE id = {mid}", "content was changed"),
        ("DELETE FROM audit_log WHERE id = {mid}", "removed"),
        ("UPDATE audit_log SET hash = NULL, prev_hash = NULL WHERE id = {mid}", "hash was removed"),
    ],
)
def test_an_altered_trail_is_found_at_the_entry(
    store: Store, tmp_path: Path, request: pytest.FixtureRequest, tamper: str, why: str
) -> None:
    for n in range(5):
        store.audit("octocat", "up.succeeded", T0 + timedelta(minutes=n), KEY, {"n": n})
    ids = [e.id for e in store.audit_chain()]
    _sql(_url(store, tmp_path, request))(tamper.format(mid=ids[2]))
    verdict = verify(store.audit_chain())
    assert not verdict.ok
    assert verdict.broken_at == (ids[3] if "DELETE" in tamper else ids[2])
    assert why in verdict.why
    assert verdict.checked == 2


def test_the_detail_is_covered_whatever_order_the_store_keeps_its_keys_in(
    store: Store, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL's jsonb re-orders keys; editing one value is still found."""
    store.audit("octocat", "deploy.rollback", T0, KEY, {"zeta": 1, "alpha": {"b": 2, "a": 1}})
    assert verify(store.audit_chain()).ok
    [entry] = store.audit_chain()
    edited = json.dumps({"zeta": 1, "alpha": {"b": 2, "a": 9}})
    run = _sql(_url(store, tmp_path, request))
    cast = "" if store.dialect == "sqlite" else "::jsonb"
    run(f"UPDATE audit_log SET detail = '{edited}'{cast} WHERE id = {entry.id}")
    assert verify(store.audit_chain()).broken_at == entry.id


def test_previewctl_audit_verify_exit_codes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"PREVIEW_STATE_DIR": str(state)}
    store = open_store(f"sqlite:///{state}/state.db")
    # An entry from before the chain began, as an older version wrote it.
    store.audit("gc", "gc.run", T0)
    _sql(f"sqlite:///{state}/state.db")("UPDATE audit_log SET hash = NULL, prev_hash = NULL")
    for n in range(3):
        store.audit("octocat", "up.succeeded", T0 + timedelta(minutes=n), KEY, {"n": n})
    good = run_previewctl(("audit", "verify", "--json"), tmp_path, env)
    assert good.code == 0, good.stderr
    said = json.loads(good.stdout)
    assert (said["ok"], said["checked"], said["unchained"]) == (True, 3, 1)
    assert said["head"] == list(store.audit_chain())[-1].hash
    human = run_previewctl(("audit", "verify"), tmp_path, env)
    assert "3 entries chained (1 older entries predate the chain)" in human.stdout
    listing = run_previewctl(("audit", "--json"), tmp_path, env)  # the listing is unchanged
    assert len(json.loads(listing.stdout)["events"]) == 4
    last = "(SELECT max(id) FROM audit_log)"
    _sql(f"sqlite:///{state}/state.db")(f"UPDATE audit_log SET detail = '{{}}' WHERE id = {last}")
    bad = run_previewctl(("audit", "verify"), tmp_path, env)
    assert bad.code == 1
    assert "the audit trail was altered at entry" in bad.stderr
    assert "content was changed" in bad.stderr
    store.close()


def test_previewctl_audit_export_by_date_as_json_lines_and_csv(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"PREVIEW_STATE_DIR": str(state)}
    store = open_store(f"sqlite:///{state}/state.db")
    days = [datetime(2026, 11, d, 23, 59, 59, tzinfo=UTC) for d in (29, 30)] + [
        datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC)
    ]
    for n, at in enumerate(days):
        store.audit("octocat", "up.succeeded", at, KEY, {"n": n, "note": 'a "quoted", comma'})
    store.audit("gc", "gc.run", days[1])
    store.close()
    november = ("audit", "export", "--since", "2026-11-30", "--until", "2026-11-30")
    lines = run_previewctl(november, tmp_path, env)
    assert lines.code == 0, lines.stderr
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [(r["action"], r["detail"].get("n")) for r in rows] == [
        ("up.succeeded", 1),
        ("gc.run", None),
    ], "the 30th, through its last second, and nothing of the 29th or of December"
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in rows)
    mine = run_previewctl((*november, "--repo", KEY.repository, "--format", "csv"), tmp_path, env)
    assert mine.code == 0, mine.stderr
    parsed = list(csv.DictReader(io.StringIO(mine.stdout)))
    assert [(r["actor"], json.loads(r["detail"])["note"]) for r in parsed] == [
        ("octocat", 'a "quoted", comma')
    ]
    to_the_second = ("audit", "export", "--since", "2026-11-29", "--until", "2026-12-01T00:00:00")
    assert len(run_previewctl(to_the_second, tmp_path, env).stdout.splitlines()) == 3
    backwards = run_previewctl(
        ("audit", "export", "--since", "2026-12-02", "--until", "2026-12-01"), tmp_path, env
    )
    assert backwards.code == 2
    assert "the range is empty" in backwards.stderr
    garbled = run_previewctl(
        ("audit", "export", "--since", "yesterday", "--until", "2026-12-01"), tmp_path, env
    )
    assert garbled.code == 2
    assert "expected YYYY-MM-DD" in garbled.stderr
