"""Finding the Pulumi CLI and the Kubernetes provider plugin before anything runs.

Checked up front so that a missing engine is one clear message with the fix,
and never a half-created stack or workspace.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

INSTALL_HELP = """\
Build it from Go modules (no internet needed beyond the Go module proxy):
    scripts/toolchain && eval "$(scripts/toolchain --env)"
or, on a machine with internet access, let the Pulumi SDK download it:
    python -c 'from pulumi.automation import PulumiCommand, VersionInfo; \
PulumiCommand.install(version=VersionInfo.parse("{pulumi}"))'
    pulumi plugin install resource kubernetes v{kubernetes}
then point PREVIEW_PULUMI_ROOT at the directory holding bin/pulumi."""


class ToolchainMissing(Exception):
    """The Pulumi CLI or the provider plugin is not where we were told to look."""


def sdk_versions() -> tuple[str, str]:
    """(pulumi, pulumi-kubernetes) versions of the installed Python SDKs."""
    return metadata.version("pulumi"), metadata.version("pulumi-kubernetes")


def default_cache_dir() -> Path:
    """Where scripts/toolchain puts its builds unless PREVIEW_TOOLCHAIN_DIR says otherwise."""
    explicit = os.environ.get("PREVIEW_TOOLCHAIN_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "preview-envs" / "toolchain"


@dataclass(frozen=True)
class Toolchain:
    """A located, checked Pulumi installation."""

    root: Path | None  # directory containing bin/pulumi; None means "pulumi" on PATH
    home: Path  # PULUMI_HOME holding the plugins

    @property
    def cli(self) -> Path:
        if self.root is not None:
            return self.root / "bin" / "pulumi"
        found = shutil.which("pulumi")
        return Path(found) if found else Path("pulumi")


def locate(root: Path | None, home: Path | None) -> Toolchain:
    """Resolve and check the CLI and plugin; raise :class:`ToolchainMissing` with the fix."""
    pulumi_version, kubernetes_version = sdk_versions()
    help_text = INSTALL_HELP.format(pulumi=pulumi_version, kubernetes=kubernetes_version)
    cache = default_cache_dir()
    if root is None:
        cached = cache / f"pulumi-v{pulumi_version}"
        if (cached / "bin" / "pulumi").is_file():
            root = cached
    if home is None:
        home = (
            cache / "pulumi-home" if (cache / "pulumi-home").is_dir() else Path.home() / ".pulumi"
        )

    if root is not None:
        cli = root / "bin" / "pulumi"
        if not (cli.is_file() and os.access(cli, os.X_OK)):
            raise ToolchainMissing(f"Pulumi CLI v{pulumi_version} not found at {cli}.\n{help_text}")
    elif shutil.which("pulumi") is None:
        raise ToolchainMissing(f"Pulumi CLI v{pulumi_version} not found on PATH.\n{help_text}")

    plugin = home / "plugins" / f"resource-kubernetes-v{kubernetes_version}"
    if not (plugin / "pulumi-resource-kubernetes").is_file():
        raise ToolchainMissing(
            f"Kubernetes provider plugin v{kubernetes_version} is not installed in {home} "
            f"(looked for {plugin}).\n{help_text}"
        )
    return Toolchain(root=root, home=home)
