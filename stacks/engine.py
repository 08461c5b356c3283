"""The Pulumi Automation API, wrapped for one-stack-per-environment use.

Inline program (no Pulumi.yaml on disk, no language plugin), a local
``file://`` backend with passphrase secrets by default (any backend URL
works), a located CLI, and no plugin downloads at run time. Everything the
engine prints streams to ``on_output`` so a terminal or a log sees progress.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
from kubernetes.client.exceptions import ApiException
from pulumi import automation as auto

from stacks import file_backend, rollout
from stacks.branch_environment import APP, BranchEnvironment
from stacks.cluster import Cluster
from stacks.errors import EngineError, RolloutNeverSucceeds, StackLocked
from stacks.spec import StackSpec, database_password
from stacks.toolchain import Toolchain, ToolchainMissing, locate

PROJECT = "preview-envs"
OutputSink = Callable[[str], None]


ROLLOUT_GRACE_S = 30  # past the rollout's deadline, for the controller to say it passed


@dataclass(frozen=True)
class EngineSettings:
    backend_url: str
    passphrase: str
    pulumi_root: Path | None = None
    pulumi_home: Path | None = None
    kubeconfig: str | None = None  # path or contents; None means the default kubeconfig
    kube_context: str | None = None
    # Holds Pulumi.<stack>.yaml (with the passphrase salt): must live as long as the backend.
    work_dir: Path | None = None
    project: str = PROJECT


@dataclass(frozen=True)
class StackOutputs:
    url: str
    namespace: str
    database_service: str

    @classmethod
    def from_map(cls, outputs: auto.OutputMap) -> StackOutputs:
        def get(key: str) -> str:
            item = outputs.get(key)
            return "" if item is None else str(item.value)

        return cls(
            url=get("url"), namespace=get("namespace"), database_service=get("database_service")
        )


def program_for(
    spec: StackSpec, provider_args: dict[str, Any], db_password: str
) -> Callable[[], None]:
    """The inline Pulumi program: a pure function of the spec and provider settings."""

    def program() -> None:
        provider = k8s.Provider("kubernetes", **provider_args)
        password = pulumi.Output.secret(db_password) if spec.database else None
        env = BranchEnvironment(
            spec.namespace,
            spec,
            db_password=password,
            opts=pulumi.ResourceOptions(provider=provider),
        )
        pulumi.export("url", env.url)
        pulumi.export("namespace", env.namespace)
        pulumi.export("database_service", env.database_service)

    return program


def _prepare_local_backend(url: str) -> list[Path]:
    """Create a ``file://`` backend's directory; repair what a crashed update left.

    Returns the unreadable metadata files removed (:mod:`stacks.file_backend`).
    """
    parts = urlsplit(url)
    if parts.scheme != "file":
        return []
    root = Path(parts.path or "/")
    root.mkdir(parents=True, exist_ok=True)
    return file_backend.repair(root)


class Engine:
    """Runs up / destroy / refresh / render for environment stacks."""

    def __init__(self, settings: EngineSettings, on_output: OutputSink | None = None) -> None:
        self.settings = settings
        self._on_output = on_output
        self._toolchain: Toolchain | None = None
        self._pulumi_command: auto.PulumiCommand | None = None

    # -- plumbing -------------------------------------------------------------

    def _emit(self, line: str) -> None:
        """A line for whoever watches the engine (a terminal, a job log), else the log."""
        if self._on_output is not None:
            self._on_output(line)
        else:
            logging.getLogger(__name__).warning("%s", line)

    def toolchain(self) -> Toolchain:
        """Locate (once) and check the CLI and plugin; raises ToolchainMissing."""
        if self._toolchain is None:
            self._toolchain = locate(self.settings.pulumi_root, self.settings.pulumi_home)
        return self._toolchain

    def _workspace_options(
        self, backend_url: str, work_dir: Path | None = None
    ) -> auto.LocalWorkspaceOptions:
        toolchain = self.toolchain()
        for removed in _prepare_local_backend(backend_url):
            self._emit(f"backend: removed {removed}, left unreadable by a crashed update")
        work_dir = work_dir or self.settings.work_dir
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
        return auto.LocalWorkspaceOptions(
            work_dir=str(work_dir) if work_dir else None,
            pulumi_home=str(toolchain.home),
            pulumi_command=self._command(toolchain),
            secrets_provider="passphrase",
            project_settings=auto.ProjectSettings(
                name=self.settings.project,
                runtime="python",
                backend=auto.ProjectBackend(url=backend_url),
            ),
            env_vars={
                "PULUMI_CONFIG_PASSPHRASE": self.settings.passphrase,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_HOME": str(toolchain.home),
            },
        )

    def _command(self, toolchain: Toolchain) -> auto.PulumiCommand:
        """The CLI, made once: making it runs ``pulumi version``, a process per operation."""
        if self._pulumi_command is None:
            root = str(toolchain.root) if toolchain.root else None
            self._pulumi_command = auto.PulumiCommand(root=root)
        return self._pulumi_command

    def _provider_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"delete_unreachable": True}
        if self.settings.kubeconfig:
            args["kubeconfig"] = self.settings.kubeconfig
        if self.settings.kube_context:
            args["context"] = self.settings.kube_context
        return args

    def _stack(
        self,
        name: str,
        program: Callable[[], None],
        backend_url: str | None = None,
        work_dir: Path | None = None,
    ) -> auto.Stack:
        opts = self._workspace_options(backend_url or self.settings.backend_url, work_dir)
        return auto.create_or_select_stack(
            stack_name=name, project_name=self.settings.project, program=program, opts=opts
        )

    def _run(self, what: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ToolchainMissing:
            raise
        except auto.ConcurrentUpdateError as exc:
            raise StackLocked(
                f"{what}: the stack is locked by another update; if no other run is active, "
                "`previewctl gc` (or `pulumi cancel`) clears a lock left by a crash"
            ) from exc
        except auto.CommandError as exc:
            raise EngineError(f"{what} failed: {diagnostics(str(exc))}") from exc

    # -- operations -------------------------------------------------------------

    def up(self, stack_name: str, spec: StackSpec) -> StackOutputs:
        """Create or update the environment; converges when run again after a crash."""

        isolation = spec.isolation
        if isolation.egress and not isolation.allow_kubernetes_api:
            cluster = Cluster(self.settings.kubeconfig, self.settings.kube_context)
            denied = cluster.api_server_networks()
            spec = dataclasses.replace(
                spec, isolation=dataclasses.replace(isolation, denied=denied)
            )

        def action() -> StackOutputs:
            password = database_password(self.settings.passphrase, stack_name)
            stack = self._stack(stack_name, program_for(spec, self._provider_args(), password))
            result = stack.up(on_output=self._on_output, color="never", refresh=False)
            return StackOutputs.from_map(result.outputs)

        outputs: StackOutputs = self._run(f"pulumi up of {stack_name}", action)
        self._await_rollout(stack_name, spec)
        return outputs

    def _await_rollout(self, stack_name: str, spec: StackSpec) -> None:
        """Return once the app's new version serves; raise if it cannot (:mod:`stacks.rollout`).

        The update itself already waited, as a rule; this only waits on where
        the provider's wait ended early, up to the rollout's own deadline.
        """
        cluster = Cluster(self.settings.kubeconfig, self.settings.kube_context)
        try:
            rollout.wait(
                lambda: cluster.deployment(spec.namespace, APP),
                spec.app.rollout_timeout_s + ROLLOUT_GRACE_S,
                self._emit,
                stuck=lambda: rollout.blocked(
                    cluster.pods(spec.namespace, f"app.kubernetes.io/name={APP}"), spec.app.image
                ),
            )
        except rollout.RolloutFailed as exc:
            raise RolloutNeverSucceeds(
                f"pulumi up of {stack_name}: the app's new version did not roll out: {exc}; the"
                " previous version, if any, keeps serving"
            ) from None

    def destroy(self, stack_name: str, remove: bool = True, namespace: str | None = None) -> bool:
        """Destroy the stack's resources and (by default) remove it; False if absent.

        With its ``namespace``, that namespace is deleted first and its workloads
        stopped at once (:meth:`Cluster.tear_down_now`): it is gone in seconds
        rather than after every grace period, and the engine, whose every
        resource is deleted with the namespace, only records it.
        """
        if not self.stack_exists(stack_name):
            return False
        if namespace is not None:
            self._tear_down_now(namespace)

        def action() -> bool:
            stack = self._stack(stack_name, _empty_program)
            stack.destroy(on_output=self._on_output, color="never")
            if remove:
                stack.workspace.remove_stack(stack_name)
            return True

        return self._run(f"pulumi destroy of {stack_name}", action)  # type: ignore[no-any-return]

    def _tear_down_now(self, namespace: str) -> None:
        try:
            cluster = Cluster(self.settings.kubeconfig, self.settings.kube_context)
            killed = cluster.tear_down_now(namespace)
        except ApiException as exc:
            self._emit(
                f"could not stop {namespace}'s pods at once ({exc.status} {exc.reason});"
                " they stop with the namespace, after their grace period"
            )
            return
        self._emit(f"deleting namespace {namespace}: {killed} pod(s) stopped with no grace period")

    def refresh(self, stack_name: str) -> None:
        def action() -> None:
            stack = self._stack(stack_name, _empty_program)
            stack.refresh(on_output=self._on_output, color="never")

        self._run(f"pulumi refresh of {stack_name}", action)

    def cancel(self, stack_name: str) -> None:
        """Release a lock left by a crashed update."""
        self._run(
            f"pulumi cancel of {stack_name}",
            lambda: self._stack(stack_name, _empty_program).cancel(),
        )

    def outputs(self, stack_name: str) -> StackOutputs | None:
        if not self.stack_exists(stack_name):
            return None
        stack = self._stack(stack_name, _empty_program)
        return StackOutputs.from_map(self._run("reading outputs", stack.outputs))

    def stack_summaries(self) -> list[auto.StackSummary]:
        """Every stack of the project in the backend, with its lock state."""

        def action() -> list[auto.StackSummary]:
            workspace = auto.LocalWorkspace(
                **vars(self._workspace_options(self.settings.backend_url))
            )
            return workspace.list_stacks(include_all=True)

        return self._run("listing stacks", action)  # type: ignore[no-any-return]

    def stack_names(self) -> list[str]:
        return [summary.name for summary in self.stack_summaries()]

    def stack_exists(self, stack_name: str) -> bool:
        return stack_name in self.stack_names()

    def render(self, spec: StackSpec, out_dir: Path) -> list[Path]:
        """Write the environment's manifests as YAML, with the real engine and no cluster.

        Uses a throwaway local backend, so rendering never touches real state.
        """
        out_dir = out_dir.resolve()
        self.toolchain()
        scratch = Path(tempfile.mkdtemp(prefix="preview-render-"))
        try:

            def action() -> None:
                args = {"render_yaml_to_directory": str(out_dir)}
                password = database_password(self.settings.passphrase, spec.namespace)
                stack = self._stack(
                    "render",
                    program_for(spec, args, password),
                    backend_url=scratch.joinpath("state").as_uri(),
                    work_dir=scratch / "workspace",
                )
                stack.up(on_output=self._on_output, color="never")

            self._run(f"rendering {spec.namespace}", action)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return sorted(p for p in out_dir.rglob("*.yaml") if p.is_file())


def _empty_program() -> None:
    """Stand-in program for operations that never run it (destroy, refresh, outputs)."""


def diagnostics(output: str, limit: int = 10) -> str:
    """The engine's error lines from its Diagnostics section, deduplicated.

    Full progress output was already streamed; the error a user reads (in the
    CLI, the journal, the PR comment) should be the cause, not 80 lines.
    """
    section = output.split("Diagnostics:", 1)[1] if "Diagnostics:" in output else output
    for end in ("\nResources:", "\nOutputs:"):
        section = section.split(end, 1)[0]
    errors: list[str] = []
    for line in section.splitlines():
        text = line.strip()
        if text.startswith("error:") and text not in errors and text != "error: update failed":
            errors.append(text.removeprefix("error:").strip())
    if not errors:
        errors = [line for line in output.strip().splitlines() if line.strip()][-limit:]
    return "; ".join(errors[:limit])
