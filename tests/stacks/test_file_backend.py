"""A file:// backend left with a half-written metadata file by a killed update is readable again."""

from __future__ import annotations

from pathlib import Path

from stacks.file_backend import repair


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_unreadable_sidecars_of_stacks_and_locks_are_removed_and_nothing_else(
    tmp_path: Path,
) -> None:
    state = tmp_path / ".pulumi"
    good = b'{"user.content_type":"application/json"}'
    checkpoint = _write(state / "stacks" / "preview-envs" / "pr-1.json", b"{}")
    intact = _write(state / "stacks" / "preview-envs" / "pr-1.json.attrs", good)
    empty = _write(state / "stacks" / "preview-envs" / "pr-2.json.attrs", b"")
    truncated = _write(state / "locks" / "org" / "preview-envs" / "pr-3" / "x.json.attrs", b'{"us')
    meta = _write(state / "meta.yaml.attrs", b"")
    history = _write(state / "history" / "preview-envs" / "pr-1" / "h.json.attrs", b"")

    assert sorted(repair(tmp_path)) == sorted([empty, truncated, meta])
    assert checkpoint.read_bytes() == b"{}"
    assert intact.read_bytes() == good
    assert history.exists(), "update history is not read by listing or loading stacks"
    assert repair(tmp_path) == []


def test_a_backend_that_does_not_exist_yet_needs_nothing(tmp_path: Path) -> None:
    assert repair(tmp_path / "new") == []
