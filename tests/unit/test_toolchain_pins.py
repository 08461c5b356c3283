"""The Python SDK pins and the toolchain build versions cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from stacks.toolchain import sdk_versions

ROOT = Path(__file__).resolve().parents[2]


def toolchain_versions() -> dict[str, str]:
    text = (ROOT / "scripts" / "toolchain.env").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.MULTILINE))


def test_installed_sdks_match_the_engine_the_toolchain_builds() -> None:
    pins = toolchain_versions()
    assert sdk_versions() == (pins["PULUMI_VERSION"], pins["KUBERNETES_PROVIDER_VERSION"])


def test_pyproject_pins_match_the_toolchain() -> None:
    pins = toolchain_versions()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"pulumi=={pins["PULUMI_VERSION"]}"' in pyproject
    assert f'"pulumi-kubernetes=={pins["KUBERNETES_PROVIDER_VERSION"]}"' in pyproject


def test_wrapper_modules_pin_the_same_versions() -> None:
    pins = toolchain_versions()
    cli_mod = (ROOT / "scripts" / "gomod" / "pulumi" / "go.mod").read_text()
    assert f"github.com/pulumi/pulumi/pkg/v3 v{pins['PULUMI_VERSION']}" in cli_mod
    provider_mod = (ROOT / "scripts" / "gomod" / "pulumi-kubernetes" / "go.mod").read_text()
    assert (
        f"{pins['KUBERNETES_PROVIDER_MODULE']} {pins['KUBERNETES_PROVIDER_MODULE_VERSION']}"
        in provider_mod
    )


def test_registry_wrapper_module_pins_the_same_version() -> None:
    pins = toolchain_versions()
    registry_mod = (ROOT / "scripts" / "gomod" / "registry" / "go.mod").read_text()
    assert f"github.com/distribution/distribution/v3 v{pins['REGISTRY_VERSION']}" in registry_mod
