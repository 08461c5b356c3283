"""`previewctl config validate|schema`: exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envs.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_valid_files_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", *map(str, EXAMPLES.glob("*.yaml"))]) == 0
    assert "ok" in capsys.readouterr().err


def test_invalid_file_exits_2_and_lists_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nimage: {repository: x}\nurl: {host_template: nope}\nttl: -1h\nextra: 1\n"
    )
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("error") == 3
    assert f"{bad}:3: url.host_template" in err
    assert f"{bad}:4: ttl" in err
    assert f"{bad}:5: extra: unknown key" in err


def test_json_output_for_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\n")
    assert main(["config", "validate", "--json", str(bad)]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert {p["path"] for p in document["problems"]} == {"image", "url"}


def test_missing_file_exits_2(tmp_path: Path) -> None:
    assert main(["config", "validate", str(tmp_path / "none.yaml")]) == 2


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "preview-envs environment spec"


def test_unknown_command_is_usage_error() -> None:
    assert main(["frobnicate"]) == 2
