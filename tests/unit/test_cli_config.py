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


@pytest.mark.parametrize(
    "variable",
    ["PREVIEW_PULUMI_PASSPHRASE", "preview_github_token", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
     "KUBECONFIG", "PULUMI_CONFIG_PASSPHRASE", "GOOGLE_APPLICATION_CREDENTIALS"],
)  # fmt: skip
def test_a_preview_is_never_handed_the_provisioners_own_secrets(
    variable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nimage: {repository: ghcr.io/acme/shop}\n"
        'url: {host_template: "{name}.p.dev"}\n'
        f"app:\n  secret_env:\n    TOKEN: {{from_env: {variable}}}\n"
    )
    assert main(["config", "validate", str(spec)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{spec}:6: app.secret_env.TOKEN.from_env" in err
    assert "provisioner's own settings or credentials" in err


def test_the_anonymisation_sources_url_never_reaches_the_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nimage: {repository: ghcr.io/acme/shop}\n"
        'url: {host_template: "{name}.p.dev"}\n'
        "app:\n  secret_env:\n    DB: {from_env: SHOP_PROD_URL}\n"
        "seed: {mode: anonymised, rules: r.yaml, source_url_env: SHOP_PROD_URL}\n"
    )
    assert main(["config", "validate", str(spec)]) == 2
    assert "production data never reaches a preview's app" in capsys.readouterr().err


def test_an_alias_bomb_and_a_deep_nest_are_refused_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nine levels of nine aliases is 9**9 values once expanded: refused before expanding."""
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("version: 1\n" + "\n".join(levels) + "\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["config", "validate", str(bomb), str(deep)]) == 2
    err = capsys.readouterr().err
    assert f"{bomb}: expands to more than 20000 values" in err
    assert f"{deep}: nested too deeply for a spec" in err
    assert "Traceback" not in err


def test_the_published_schema_is_the_one_the_code_validates_with(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Editors read docs/spec.schema.json (the examples point at it): it must not drift."""
    assert main(["config", "schema"]) == 0
    published = (Path(__file__).parents[2] / "docs" / "spec.schema.json").read_text()
    assert json.loads(published) == json.loads(capsys.readouterr().out), (
        "docs/spec.schema.json is stale: previewctl config schema > docs/spec.schema.json"
    )
