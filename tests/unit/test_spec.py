"""Spec files: defaults, strictness, and one precise message per mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.config.spec_loading import SpecInvalid, load_spec, parse_spec
from envs.core.spec import EnvironmentSpec, SeedMode, format_duration, json_schema, parse_duration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MINIMAL = """\
version: 1
image:
  repository: ghcr.io/acme/shop
url:
  host_template: "{name}.preview.acme.dev"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecInvalid) as info:
        parse_spec(text, "spec.yaml")
    return [str(p) for p in info.value.problems]


def test_minimal_spec_gets_useful_defaults() -> None:
    spec = parse_spec(MINIMAL, "spec.yaml")
    assert spec.ttl == timedelta(hours=72)
    assert spec.database.enabled
    assert spec.app.port == 8080
    assert spec.seed.mode is SeedMode.NONE


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid(path: Path) -> None:
    assert isinstance(load_spec(path), EnvironmentSpec)


def test_spec_is_immutable() -> None:
    spec = parse_spec(MINIMAL, "spec.yaml")
    with pytest.raises(ValueError, match="frozen"):
        spec.app.port = 1  # type: ignore[misc]


def test_wrong_type_names_file_line_and_key() -> None:
    [message] = problems(MINIMAL + "app:\n  port: eighty\n")
    assert message.startswith("spec.yaml:7: app.port:")
    assert "valid integer" in message


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    [message] = problems(MINIMAL + "app:\n  prot: 8080\n")
    assert "app.prot" in message
    assert "did you mean 'port'" in message
    assert "allowed here:" in message


def test_unknown_top_level_key_is_an_error() -> None:
    [message] = problems(MINIMAL + "databse: {}\n")
    assert "databse: unknown key (did you mean 'database'?)" in message


def test_bad_host_template_field() -> None:
    [message] = problems(MINIMAL.replace("{name}", "{nmae}"))
    assert "url.host_template" in message
    assert "unknown field(s) ['nmae']" in message


def test_host_template_must_make_a_host_name() -> None:
    [message] = problems(MINIMAL.replace("{name}.preview.acme.dev", "{name}_preview"))
    assert "valid host name" in message


def test_host_template_must_differ_per_pr() -> None:
    [message] = problems(MINIMAL.replace("{name}.preview.acme.dev", "preview.acme.dev"))
    assert "must contain {name} or {pr}" in message


def test_negative_ttl_is_refused() -> None:
    [message] = problems(MINIMAL + "ttl: -5h\n")
    assert message.startswith("spec.yaml:6: ttl:")
    assert "not a duration" in message


def test_zero_ttl_is_refused() -> None:
    [message] = problems(MINIMAL + "ttl: 0h\n")
    assert "positive duration" in message


def test_missing_image_is_named() -> None:
    text = MINIMAL.replace("image:\n  repository: ghcr.io/acme/shop\n", "")
    [message] = problems(text)
    assert "image: required key is missing" in message


def test_image_with_tag_is_refused() -> None:
    [message] = problems(MINIMAL.replace("ghcr.io/acme/shop", "ghcr.io/acme/shop:latest"))
    assert "without tag or digest" in message


def test_all_problems_are_reported_at_once() -> None:
    text = MINIMAL + "ttl: never\napp:\n  port: 0\n  replicas: 99\n"
    assert len(problems(text)) == 3


def test_unsupported_version() -> None:
    [message] = problems(MINIMAL.replace("version: 1", "version: 2"))
    assert "version" in message
    assert "1" in message


def test_not_yaml() -> None:
    [message] = problems("version: [1\n")
    assert "not valid YAML" in message


def test_not_a_mapping() -> None:
    [message] = problems("- 1\n- 2\n")
    assert "must be a mapping" in message


def test_anonymised_seed_needs_rules_and_source() -> None:
    [message] = problems(MINIMAL + "seed:\n  mode: anonymised\n")
    assert "needs 'rules'" in message


def test_seed_without_database_is_refused() -> None:
    [message] = problems(MINIMAL + "database: {enabled: false}\nseed: {mode: synthetic}\n")
    assert "database.enabled" in message


def test_tls_needs_a_certificate_source() -> None:
    [message] = problems(MINIMAL + "  tls: {enabled: true}\n")
    assert "secret_name" in message


def test_database_url_is_reserved() -> None:
    [message] = problems(MINIMAL + "app:\n  env: {DATABASE_URL: x}\n")
    assert "DATABASE_URL is set by the provisioner" in message


def test_bad_quantity_names_examples() -> None:
    [message] = problems(MINIMAL + "quota:\n  memory: lots\n")
    assert "Kubernetes quantity" in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecInvalid, match="cannot read"):
        load_spec(tmp_path / "absent.yaml")


def test_json_schema_describes_the_spec() -> None:
    schema = json_schema()
    assert schema["required"] == ["version", "image", "url"]
    assert schema["additionalProperties"] is False
    assert "host_template" in schema["$defs"]["UrlSpec"]["properties"]


@given(days=st.integers(0, 30), hours=st.integers(0, 23), minutes=st.integers(0, 59))
def test_durations_round_trip(days: int, hours: int, minutes: int) -> None:
    value = timedelta(days=days, hours=hours, minutes=minutes)
    if value > timedelta(0):
        assert parse_duration(format_duration(value)) == value
