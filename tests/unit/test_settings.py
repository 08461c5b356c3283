"""Provisioner settings from PREVIEW_* variables: defaults, errors, secrecy."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.config.settings import load_settings
from envs.core.errors import ConfigError


def test_defaults_are_embedded_sqlite_and_local_pulumi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.resolved_state_url == f"sqlite:///{tmp_path}/.state/state.db"
    assert settings.resolved_backend_url == (tmp_path / ".state" / "pulumi").as_uri()


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVIEW_STATE_URL", "postgresql://db/x")
    monkeypatch.setenv("PREVIEW_PULUMI_BACKEND_URL", "s3://bucket/state")
    monkeypatch.setenv("PREVIEW_GITHUB_API_URL", "https://ghe.example/api/v3/")
    settings = load_settings()
    assert settings.resolved_state_url == "postgresql://db/x"
    assert settings.resolved_backend_url == "s3://bucket/state"
    assert settings.github_api_url == "https://ghe.example/api/v3"


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVIEW_GITHUB_TOKEN", "ghp_supersecret")
    monkeypatch.setenv("PREVIEW_WEBHOOK_SECRET", "hook-secret")
    monkeypatch.setenv("PREVIEW_PULUMI_PASSPHRASE", "pass-secret")
    text = repr(load_settings()) + str(load_settings().model_dump())
    for secret in ("ghp_supersecret", "hook-secret", "pass-secret"):
        assert secret not in text


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVIEW_GITHUB_APP_ID", "not-a-number")
    monkeypatch.setenv("PREVIEW_GITHUB_API_URL", "ftp://x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "PREVIEW_GITHUB_APP_ID" in str(info.value)
    assert "PREVIEW_GITHUB_API_URL" in str(info.value)


def test_app_auth_needs_both_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVIEW_GITHUB_APP_ID", "123")
    with pytest.raises(ConfigError, match="PREVIEW_GITHUB_APP_PRIVATE_KEY"):
        load_settings()


def test_settings_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / "preview.env"
    env_file.write_text("PREVIEW_INGRESS_NAMESPACE=traefik\nPREVIEW_KUBE_CONTEXT=from-file\n")
    monkeypatch.setenv("PREVIEW_SETTINGS_FILE", str(env_file))
    monkeypatch.setenv("PREVIEW_KUBE_CONTEXT", "from-env")
    settings = load_settings()
    assert settings.ingress_namespace == "traefik"
    assert settings.kube_context == "from-env"


def test_missing_settings_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PREVIEW_SETTINGS_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ConfigError, match="PREVIEW_SETTINGS_FILE"):
        load_settings()


def test_database_address_is_a_host_port_template(monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks.spec import database_url

    default = load_settings().database_address
    assert database_url("pr-1-x", "app", "app", "p/w", default) == (
        "postgresql://app:p%2Fw@postgres.pr-1-x.svc.cluster.local:5432/app"
    )
    monkeypatch.setenv("PREVIEW_DATABASE_ADDRESS", "db-proxy.internal:6432")
    assert "@db-proxy.internal:6432/" in database_url(
        "n", "app", "app", "pw", load_settings().database_address
    )
    for bad in ("no-port", "{ns}.svc:5432", "host:port"):
        monkeypatch.setenv("PREVIEW_DATABASE_ADDRESS", bad)
        with pytest.raises(ConfigError, match="PREVIEW_DATABASE_ADDRESS"):
            load_settings()
