"""GitHub's published contract, from npm: real webhook examples and the REST OpenAPI description.

Installed by ``scripts/test`` (``npm ci --prefix tests/contract``). Missing
files are an error, never a skip: a test that silently stops checking the
contract is worse than no test.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent / "node_modules" / "@octokit"
EXAMPLES = ROOT / "webhooks-examples" / "api.github.com" / "index.json"
OPENAPI = ROOT / "openapi" / "generated" / "api.github.com.json"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise RuntimeError(
            f"{path} is missing; run: npm ci --prefix tests/contract (scripts/test does this)"
        )
    return path


@cache
def webhook_examples() -> dict[str, list[dict[str, Any]]]:
    """Event name → every example payload GitHub's docs publish for it."""
    entries = json.loads(_require(EXAMPLES).read_text(encoding="utf-8"))
    return {entry["name"]: entry["examples"] for entry in entries}


@cache
def openapi_description() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_require(OPENAPI).read_text(encoding="utf-8"))
    return loaded
