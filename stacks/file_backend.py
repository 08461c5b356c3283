"""Keeping a ``file://`` Pulumi backend readable after a crash.

The file backend stores each blob with a JSON sidecar (``<blob>.attrs``:
content type, checksum). Its writer renames the blob's temporary file into
place atomically, but writes the sidecar in place first: a process killed in
between (SIGKILL, an evicted pod, a power cut) leaves an empty or truncated
sidecar next to an intact blob — the previous checkpoint — and from then on
every command reading that stack fails with ``error: EOF``. A missing
sidecar is read as "no attributes", so removing an unreadable one is safe
and the blob is whole again. Only the sidecars that listing and loading
stacks read are checked (stacks, locks, the backend's meta file), so the
cost grows with the number of stacks, not with their update history.
"""

from __future__ import annotations

import json
from pathlib import Path

_CHECKED = ("stacks", "locks")


def _readable(sidecar: Path) -> bool:
    try:
        json.loads(sidecar.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def repair(root: Path) -> list[Path]:
    """Remove the unreadable sidecars under backend ``root``; the paths removed."""
    state = root / ".pulumi"
    sidecars = [state / "meta.yaml.attrs"]
    for folder in _CHECKED:
        if (state / folder).is_dir():
            sidecars.extend((state / folder).rglob("*.attrs"))
    removed = []
    for sidecar in sidecars:
        if sidecar.is_file() and not _readable(sidecar):
            sidecar.unlink(missing_ok=True)
            removed.append(sidecar)
    return removed
