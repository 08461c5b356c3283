"""Building the service's parts from settings, once per CLI invocation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from envs.config.settings import Settings, load_settings
from envs.config.spec_loading import load_spec
from envs.core.clock import system_clock
from envs.core.errors import ConfigError, OperationFailed
from envs.core.etags import ResponseCache
from envs.core.model import Environment
from envs.core.spec import EnvironmentSpec
from envs.environments.lifecycle import Lifecycle
from envs.environments.registry import Credentials, RegistryClient
from envs.environments.seed_run import SeedPlace
from envs.environments.stack_plan import Placement
from envs.github.client import ClientOptions, PyGithubClient
from envs.store import Store, open_store
from envs.worker.handlers import Handlers
from envs.worker.loop import Worker, WorkerOptions
from stacks.spec import DATABASE_POD, DATABASE_PORT, PORT_FORWARD, database_password, database_url

if TYPE_CHECKING:  # Pulumi's SDK loads when a command builds an engine
    from stacks.engine import Engine, OutputSink


@dataclass
class Context:
    settings: Settings

    def engine(self, on_output: OutputSink | None) -> Engine:
        from stacks.engine import Engine, EngineSettings

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

    @property
    def placement(self) -> Placement:
        s = self.settings
        return Placement(s.ingress_namespace, s.provisioner_namespace, s.service_account)

    def lifecycle(self, on_output: OutputSink | None) -> Lifecycle:
        return Lifecycle(
            self.store(),
            self.engine(on_output),
            clock=system_clock,
            environ=os.environ,
            placement=self.placement,
        )

    @contextmanager
    def database(self, env: Environment, spec: EnvironmentSpec) -> Iterator[str]:
        """The environment's database URL as the worker reaches it (PREVIEW_DATABASE_ADDRESS),
        valid for the ``with`` block: through a port-forward when the worker is outside
        the cluster."""
        s = self.settings
        password = database_password(s.pulumi_passphrase.get_secret_value(), env.stack)
        url = partial(database_url, env.namespace, "app", spec.database.name, password)
        if s.database_address != PORT_FORWARD:
            yield url(s.database_address)
            return
        from stacks.cluster import Cluster
        from stacks.errors import ClusterUnreachable

        try:
            cluster = Cluster(s.kubeconfig, s.kube_context)
        except ClusterUnreachable as exc:
            raise OperationFailed(f"cannot reach the database to seed it: {exc}") from None
        with cluster.forward(env.namespace, DATABASE_POD, DATABASE_PORT) as (host, port):
            yield url(f"{host}:{port}")

    def spec_for(self, repository: str, explicit: Path | None) -> EnvironmentSpec:
        """The spec given with --spec, else <config_dir>/<owner>/<repo>.yaml."""
        path = explicit or self.settings.config_dir / f"{repository}.yaml"
        if explicit is None and not path.is_file():
            raise ConfigError(
                f"no spec for {repository}: expected {path} (or pass --spec FILE; "
                "PREVIEW_CONFIG_DIR sets the directory)"
            )
        return load_spec(path)

    def github(self, cache: ResponseCache | None = None) -> PyGithubClient:
        """The GitHub client from settings: a GitHub App if configured, else a token.

        With ``cache``, repeated listings are conditional requests.
        """
        s = self.settings
        options = ClientOptions(base_url=s.github_api_url)
        if s.github_app_id is not None and s.github_app_private_key is not None:
            key = s.github_app_private_key.get_secret_value()
            return PyGithubClient.as_app(s.github_app_id, key, options, cache)
        if s.github_token is not None:
            return PyGithubClient.with_token(s.github_token.get_secret_value(), options, cache)
        raise ConfigError(
            "no GitHub credentials: set PREVIEW_GITHUB_APP_ID and PREVIEW_GITHUB_APP_PRIVATE_KEY "
            "(a GitHub App, recommended) or PREVIEW_GITHUB_TOKEN"
        )

    def seed_place(self, spec_dir: Path | None = None) -> SeedPlace:
        """Seeding's inputs: recipes and rules beside the spec (``spec_dir`` when given)."""
        return SeedPlace(
            database=self.database,
            spec_dir=lambda repository: (
                spec_dir or self.settings.config_dir / repository.split("/")[0]
            ),
            environ=os.environ,
        )

    def worker(self, on_output: OutputSink | None = None) -> Worker:
        store = self.store()
        lifecycle = Lifecycle(
            store,
            self.engine(on_output),
            clock=system_clock,
            environ=os.environ,
            placement=self.placement,
        )
        s = self.settings
        credentials = (
            Credentials(s.registry_username, s.registry_password.get_secret_value())
            if s.registry_username and s.registry_password
            else None
        )
        handlers = Handlers(
            store,
            lifecycle,
            self.github(),
            lambda repository: self.spec_for(repository, None),
            system_clock,
            registry=RegistryClient(credentials),
            seeding=self.seed_place(),
        )
        lease = timedelta(seconds=self.settings.worker_lease_seconds)
        return Worker(store, handlers, WorkerOptions(lease=lease), clock=system_clock)


class LazyContext:
    """Settings are read only by commands that need them (config validate does not)."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        self._context: Context | None = None

    def get(self) -> Context:
        if self._context is None:
            self._context = Context(load_settings(**self._overrides))
        return self._context


def current_context() -> Context:
    """The Context of the running ``previewctl`` command."""
    lazy: LazyContext = click.get_current_context().find_root().obj
    return lazy.get()
