"""Building the service's parts from settings, once per CLI invocation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from envs.clock import system_clock
from envs.errors import ConfigError
from envs.lifecycle import Lifecycle
from envs.settings import Settings
from envs.spec import EnvironmentSpec
from envs.spec_loading import load_spec
from envs.store import Store, open_store
from stacks.engine import Engine, EngineSettings, OutputSink


@dataclass
class Context:
    settings: Settings

    def engine(self, on_output: OutputSink | None) -> Engine:
        s = self.settings
        return Engine(
            EngineSettings(
                backend_url=s.resolved_backend_url,
                passphrase=s.pulumi_passphrase.get_secret_value(),
                pulumi_root=s.pulumi_root,
                pulumi_home=s.pulumi_home,
                kubeconfig=s.kubeconfig,
                kube_context=s.kube_context,
                work_dir=s.workspace_dir,
            ),
            on_output=on_output,
        )

    def store(self) -> Store:
        return open_store(self.settings.resolved_state_url)

    def lifecycle(self, on_output: OutputSink | None) -> Lifecycle:
        return Lifecycle(
            self.store(),
            self.engine(on_output),
            clock=system_clock,
            environ=os.environ,
            ingress_namespace=self.settings.ingress_namespace,
        )

    def spec_for(self, repository: str, explicit: Path | None) -> EnvironmentSpec:
        """The spec given with --spec, else <config_dir>/<owner>/<repo>.yaml."""
        path = explicit or self.settings.config_dir / f"{repository}.yaml"
        if explicit is None and not path.is_file():
            raise ConfigError(
                f"no spec for {repository}: expected {path} (or pass --spec FILE; "
                "PREVIEW_CONFIG_DIR sets the directory)"
            )
        return load_spec(path)
