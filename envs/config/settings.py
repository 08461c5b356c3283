"""The provisioner's own settings: ``PREVIEW_*`` environment variables.

Validated once at start-up; a bad value stops the process with the
variable's name and the fix. Secrets are ``SecretStr`` so they never reach a
log line, a ``repr`` or ``--json`` output by accident.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from envs.core.errors import ConfigError
from stacks.spec import DEFAULT_INGRESS_NAMESPACE, IN_CLUSTER_ADDRESS, PORT_FORWARD

DEFAULT_STATE_DIR = Path(".state")
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
# Fit for a trial on one machine only: every preview's database password and every
# secret in Pulumi state derive from it, and it is printed here for anyone to read.
DEFAULT_PASSPHRASE = "preview-envs-local"


class Settings(BaseSettings):
    """Every knob of the provisioner; see the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix="PREVIEW_", env_file=None, extra="ignore", frozen=True
    )

    state_dir: Path = Field(DEFAULT_STATE_DIR, description="Local state: SQLite, Pulumi workspace.")
    state_url: str | None = Field(
        None, description="sqlite:///path or postgresql://...; default SQLite in state_dir."
    )
    pulumi_backend_url: str | None = Field(
        None, description="Any Pulumi backend URL; default file:// under state_dir."
    )
    pulumi_passphrase: SecretStr = Field(
        SecretStr(DEFAULT_PASSPHRASE),
        description="Encrypts secrets in Pulumi state; set a real one in production.",
    )
    pulumi_root: Path | None = Field(None, description="Directory holding bin/pulumi.")
    pulumi_home: Path | None = Field(None, description="PULUMI_HOME with the kubernetes plugin.")
    config_dir: Path = Field(Path("specs"), description="Environment specs, <owner>/<repo>.yaml.")
    kubeconfig: str | None = Field(None, description="Kubeconfig path; default as kubectl.")
    kube_context: str | None = None
    ingress_namespace: str = DEFAULT_INGRESS_NAMESPACE
    database_address: str = Field(
        IN_CLUSTER_ADDRESS,
        description="host:port where the worker reaches an environment's database; "
        "{namespace} is filled in (another cluster domain, or a proxy). 'port-forward': "
        "through the Kubernetes API, for a worker that runs outside the cluster.",
    )
    provisioner_namespace: str | None = Field(
        None,
        description="Namespace the worker runs in; admitted to each preview database to seed it.",
    )
    service_account: str | None = Field(
        None,
        description="namespace/name of the ServiceAccount the provisioner runs as; each preview's"
        " stack binds it to the preview-envs-environment role in that preview's namespace only.",
    )
    github_api_url: str = "https://api.github.com"
    github_token: SecretStr | None = None
    github_app_id: int | None = None
    github_app_private_key: SecretStr | None = None
    webhook_secret: SecretStr | None = Field(
        None, description="The GitHub App's or repository webhook's secret."
    )
    promote_token: SecretStr | None = Field(
        None,
        description="Bearer token CI sends to POST /promote (previewctl promote): shared by"
        " every repository, so weaker than PREVIEW_PROMOTE_OIDC_AUDIENCE.",
    )
    promote_oidc_audience: str | None = Field(
        None,
        description="Accept GitHub Actions OIDC tokens on POST /promote, minted for this"
        " audience (the promote action's `audience`): each repository promotes its own images.",
    )
    promote_oidc_issuer: str = "https://token.actions.githubusercontent.com"
    promote_oidc_jwks_url: str | None = Field(
        None, description="The issuer's keys; default <issuer>/.well-known/jwks."
    )
    promote_oidc_workflows: str = Field(
        "",
        description="Comma-separated job_workflow_ref prefixes allowed to promote, e.g."
        " acme/shop/.github/workflows/ci.yml@; empty: any workflow of the repository.",
    )
    service_url: str | None = Field(
        None, description="Where previewctl promote finds the service; unset: the local store."
    )
    registry_username: str | None = Field(
        None, description="For tag promotion: registry login (anonymous when unset)."
    )
    registry_password: SecretStr | None = None
    worker_lease_seconds: int = Field(60, ge=10, le=3600, description="Job lease; renewed.")

    @property
    def passphrase_is_default(self) -> bool:
        return self.pulumi_passphrase.get_secret_value() == DEFAULT_PASSPHRASE

    def require_own_passphrase(self, command: str) -> None:
        """Refuse to run a long-lived ``command`` (serve, worker, gc) on the built-in passphrase."""
        if self.passphrase_is_default:
            raise ConfigError(
                f"{command} refuses to run with the built-in PREVIEW_PULUMI_PASSPHRASE: every"
                " preview's database password and every secret in Pulumi state derive from it,"
                " and it is public. Set your own, e.g."
                " `export PREVIEW_PULUMI_PASSPHRASE=$(openssl rand -hex 32)`, and keep it (a new"
                " one changes every preview's database password on its next deploy)"
            )

    @field_validator("kubeconfig", "kube_context", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, value: str | None) -> str | None:
        if value is not None and not _SERVICE_ACCOUNT.match(value):
            raise ValueError("must be namespace/name, e.g. preview-envs/preview-envs")
        return value

    @field_validator("database_address")
    @classmethod
    def _database_address(cls, value: str) -> str:
        if value == PORT_FORWARD:
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(
                "must be host:port, e.g. postgres.{namespace}.svc.cluster.local:5432,"
                f" or '{PORT_FORWARD}'"
            )
        try:
            value.format(namespace="x")
        except (KeyError, IndexError, ValueError):
            raise ValueError("the only field is {namespace}") from None
        return value

    @field_validator("github_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://api.github.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _app_auth_complete(self) -> Settings:
        if (self.github_app_id is None) != (self.github_app_private_key is None):
            raise ValueError(
                "GitHub App auth needs both PREVIEW_GITHUB_APP_ID and "
                "PREVIEW_GITHUB_APP_PRIVATE_KEY"
            )
        return self

    @property
    def resolved_state_url(self) -> str:
        if self.state_url:
            return self.state_url
        return "sqlite:///" + str((self.state_dir / "state.db").resolve())

    @property
    def resolved_backend_url(self) -> str:
        if self.pulumi_backend_url:
            return self.pulumi_backend_url
        return (self.state_dir / "pulumi").resolve().as_uri()

    @property
    def workspace_dir(self) -> Path:
        return (self.state_dir / "workspace").resolve()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and ``PREVIEW_SETTINGS_FILE``, a dotenv file).

    Real environment variables win over the file. Raises ConfigError naming
    each bad variable.
    """
    settings_file = os.environ.get("PREVIEW_SETTINGS_FILE")
    if settings_file and not Path(settings_file).is_file():
        raise ConfigError(f"PREVIEW_SETTINGS_FILE: {settings_file} does not exist")
    try:
        return Settings(_env_file=settings_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in error["loc"])
            name = f"PREVIEW_{loc.upper()}" if loc else "settings"
            lines.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from None
