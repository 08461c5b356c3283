"""The environment spec: what one application repository asks of its previews.

A spec lives in the application repository (``.preview.yaml``) and/or in the
provisioner's config directory. It is versioned (``version: 1``), strict
(unknown keys are errors, because a typo must not silently turn a setting
off) and immutable once loaded. Defaults are the ones a small web app with a
PostgreSQL wants, so a minimal spec is four lines.
"""

from __future__ import annotations

import ipaddress
import re
import string
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from envs.core.naming import MAX_PREFIX, is_valid_prefix

SPEC_VERSION = 1

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The provisioner's own settings and the credentials it runs with: a preview runs the
# pull request's code, so none of them may be handed to it as an app secret.
_PROVISIONER_ONLY = re.compile(
    r"^(PREVIEW_|GITHUB_|GH_|PULUMI_|AWS_|AZURE_|ARM_|GOOGLE_|GCP_|CLOUDSDK_|KUBE)", re.IGNORECASE
)
_IMAGE_REPO = re.compile(r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOST_FIELDS = frozenset({"name", "pr", "owner", "repo"})
TAG_FIELDS = frozenset({"sha", "short_sha", "pr"})


def parse_duration(value: object) -> timedelta:
    """``72h``, ``2d``, ``1d12h``, ``90m`` → timedelta; numbers are hours."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError("expected a duration such as '72h', '2d' or '90m'")
    elif isinstance(value, int | float):
        try:
            result = timedelta(hours=value)
        except OverflowError:
            raise ValueError(f"{value} hours is longer than any duration this can hold") from None
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match or not any(match.groups()):
            raise ValueError(
                f"{value!r} is not a duration; use days/hours/minutes such as '72h', '2d', '1d12h'"
            )
        days, hours, minutes = (int(g) if g else 0 for g in match.groups())
        try:
            result = timedelta(days=days, hours=hours, minutes=minutes)
        except OverflowError:
            raise ValueError(f"{value[:20]!r} is longer than any duration this can hold") from None
    else:
        raise ValueError("expected a duration such as '72h', '2d' or '90m'")
    if result <= timedelta(0):
        raise ValueError("must be a positive duration such as '72h'")
    return result


def format_duration(value: timedelta) -> str:
    """Inverse of :func:`parse_duration` for display and JSON."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return "".join(parts) or "0m"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+d)?(\d+h)?(\d+m)?$", "examples": ["72h"]}),
]


def _check_quantity(value: object) -> str:
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _QUANTITY.match(text):
        raise ValueError(
            f"{value!r} is not a Kubernetes quantity; use e.g. '500m' or '1' (CPU), "
            "'256Mi' or '1Gi' (memory, storage)"
        )
    return text


Quantity = Annotated[
    str,
    BeforeValidator(_check_quantity),
    WithJsonSchema({"type": "string", "pattern": _QUANTITY.pattern}),
]


def _template_fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{template!r} is not a valid template: {exc}") from None


class StrictModel(BaseModel):
    """Frozen, strict about unknown keys; the base of every spec section."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PromotionMode(StrEnum):
    """How the image that CI promoted for a head SHA is identified."""

    DIGEST = "digest"  # CI reports the digest (previewctl promote / workflow_run)
    TAG = "tag"  # CI pushes a tag derived from the SHA; resolved to a digest before deploy


class ImageSpec(StrictModel):
    repository: str = Field(description="Image repository, e.g. ghcr.io/acme/shop (no tag).")
    promotion: PromotionMode = PromotionMode.DIGEST
    tag_template: str = Field(
        "sha-{short_sha}",
        description="With promotion: tag, the tag CI pushes. Fields: {sha}, {short_sha}, {pr}.",
    )

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not _IMAGE_REPO.match(value):
            raise ValueError(
                f"{value!r} is not an image repository; use lowercase 'registry/path/name' "
                "without tag or digest, e.g. 'ghcr.io/acme/shop'"
            )
        return value

    @field_validator("tag_template")
    @classmethod
    def _tag_template(cls, value: str) -> str:
        unknown = _template_fields(value) - TAG_FIELDS
        if unknown:
            raise ValueError(
                f"unknown field(s) {sorted(unknown)} in tag template; allowed: {sorted(TAG_FIELDS)}"
            )
        return value


class SecretEnvSource(StrictModel):
    """A secret value the provisioner reads from its own environment at deploy time.

    Previews never receive production secrets; the operator decides which
    preview-only values exist by setting these variables on the provisioner.
    """

    from_env: str = Field(description="Variable on the provisioner holding the value.")

    @field_validator("from_env")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        if _PROVISIONER_ONLY.match(value):
            raise ValueError(
                f"{value!r} is one of the provisioner's own settings or credentials (PREVIEW_*,"
                " GITHUB_*, PULUMI_*, cloud and Kubernetes credentials); a preview runs the pull"
                " request's code and never receives them: set a preview-only variable on the"
                " provisioner (e.g. SHOP_PREVIEW_STRIPE_KEY) and name that"
            )
        return value


class ResourceAmounts(StrictModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(StrictModel):
    requests: ResourceAmounts = ResourceAmounts(cpu="100m", memory="128Mi")
    limits: ResourceAmounts = ResourceAmounts(cpu="500m", memory="512Mi")


class AppSpec(StrictModel):
    port: int = Field(8080, ge=1, le=65535)
    health_path: str = "/healthz"
    replicas: int = Field(1, ge=1, le=10)
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, SecretEnvSource] = Field(default_factory=dict)
    resources: Resources = Resources()
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    rollout_timeout: Duration = Field(
        timedelta(minutes=10),
        description="How long a new version may take to become ready before the deploy fails "
        "and the previous version keeps serving (the Deployment's progress deadline).",
    )

    @field_validator("health_path")
    @classmethod
    def _health_path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must be an absolute URL path such as '/healthz'")
        return value

    @field_validator("env", "secret_env")
    @classmethod
    def _env_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [name for name in value if not _ENV_NAME.match(name)]
        if bad:
            raise ValueError(f"not environment variable names: {bad}")
        reserved = {"DATABASE_URL"} & set(value)
        if reserved:
            raise ValueError("DATABASE_URL is set by the provisioner from the preview database")
        return value

    @model_validator(mode="after")
    def _no_overlap(self) -> AppSpec:
        both = set(self.env) & set(self.secret_env)
        if both:
            raise ValueError(f"variables set both in env and secret_env: {sorted(both)}")
        return self


class DatabaseSpec(StrictModel):
    enabled: bool = True
    postgres_version: Literal["13", "14", "15", "16", "17"] = "15"
    storage: Quantity = "1Gi"
    extensions: tuple[str, ...] = ()
    name: str = Field("app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    resources: Resources = Resources(
        requests=ResourceAmounts(cpu="100m", memory="256Mi"),
        limits=ResourceAmounts(cpu="1", memory="1Gi"),
    )

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in value if not re.fullmatch(r"[a-z_][a-z0-9_]*", e)]
        if bad:
            raise ValueError(f"not extension names: {bad}")
        return value


class SeedMode(StrEnum):
    NONE = "none"
    SYNTHETIC = "synthetic"
    ANONYMISED = "anonymised"


class SeedSpec(StrictModel):
    mode: SeedMode = SeedMode.NONE
    rules: str | None = Field(
        None, description="Rules file (anonymised) or recipe (synthetic), relative to the spec."
    )
    scale: float = Field(1.0, gt=0, le=1000, description="Synthetic: multiplier on row counts.")
    source_url_env: str | None = Field(
        None, description="Anonymised: provisioner variable holding the source database URL."
    )
    statement_timeout: Duration = Field(
        timedelta(minutes=10),
        description="Longest one statement (a table's COPY, an index) may run on the preview's"
        " database: a CHECK or index of the pull request's that sleeps cannot hold a worker.",
    )

    @model_validator(mode="after")
    def _mode_needs(self) -> SeedSpec:
        if self.mode is SeedMode.ANONYMISED and (self.rules is None or self.source_url_env is None):
            raise ValueError("mode 'anonymised' needs 'rules' (a rules file) and 'source_url_env'")
        return self


class TlsSpec(StrictModel):
    enabled: bool = False
    secret_name: str | None = Field(None, description="Existing wildcard certificate Secret.")
    cluster_issuer: str | None = Field(None, description="cert-manager ClusterIssuer to annotate.")

    @model_validator(mode="after")
    def _source(self) -> TlsSpec:
        if self.enabled and not (self.secret_name or self.cluster_issuer):
            raise ValueError(
                "tls.enabled needs 'secret_name' (existing certificate) or 'cluster_issuer'"
            )
        return self


class UrlSpec(StrictModel):
    host_template: str = Field(
        description="Preview host, e.g. '{name}.preview.acme.dev'. Fields: {name}, {pr}, "
        "{owner}, {repo}. {name} is the derived environment name."
    )
    ingress_class: str | None = "nginx"
    tls: TlsSpec = TlsSpec()

    @field_validator("host_template")
    @classmethod
    def _host_template(cls, value: str) -> str:
        fields = _template_fields(value)
        unknown = fields - HOST_FIELDS
        if unknown:
            raise ValueError(
                f"unknown field(s) {sorted(unknown)} in host template; "
                f"allowed: {sorted(HOST_FIELDS)}"
            )
        if "name" not in fields and "pr" not in fields:
            raise ValueError("host template must contain {name} or {pr}, or every PR gets one host")
        sample = value.format(name="pr-1-x", pr=1, owner="o", repo="r")
        labels = sample.split(".")
        if len(labels) < 2 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
            raise ValueError(
                f"{value!r} does not give a valid host name; expected lowercase DNS labels "
                "separated by dots, e.g. '{name}.preview.acme.dev'"
            )
        return value


class QuotaSpec(StrictModel):
    """ResourceQuota for the whole namespace: a runaway preview stays small."""

    cpu: Quantity = "2"
    memory: Quantity = "4Gi"
    pods: int = Field(20, ge=1)
    storage: Quantity = "10Gi"
    ephemeral_storage: Quantity = Field(
        "4Gi", description="Containers' writable layers, logs and emptyDir volumes, in all."
    )


class PodSecurity(StrEnum):
    RESTRICTED = "restricted"  # the default: non-root, no capabilities, RuntimeDefault seccomp
    BASELINE = "baseline"  # for an image that must run as root; still no host access


class EgressRule(StrictModel):
    """A destination beyond DNS and the namespace that the preview's pods may reach."""

    cidr: str = Field(description="An IPv4 or IPv6 network, e.g. 10.20.0.0/16 or 0.0.0.0/0.")
    ports: tuple[int, ...] = Field((), description="TCP/UDP ports; none means every port.")
    protocol: Literal["TCP", "UDP"] = "TCP"

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network; write e.g. 10.20.0.0/16") from None

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is not between 1 and 65535")
        return value


class SecuritySpec(StrictModel):
    """How a preview is fenced in: a pull request's code runs there (docs/security.md)."""

    pod_security: PodSecurity = Field(
        PodSecurity.RESTRICTED,
        description="Pod Security level the namespace enforces; 'privileged' is not offered.",
    )
    egress: tuple[EgressRule, ...] = Field(
        (), description="Destinations opened beyond DNS and the preview's own namespace."
    )
    allow_cloud_metadata: bool = Field(
        False, description="Let an egress rule reach 169.254.169.254 (node credentials)."
    )
    allow_kubernetes_api: bool = Field(
        False, description="Let an egress rule reach the cluster's API server."
    )


class Permission(StrEnum):
    READ = "read"
    TRIAGE = "triage"
    WRITE = "write"
    MAINTAIN = "maintain"
    ADMIN = "admin"


class ForkPolicy(StrEnum):
    APPROVAL = "approval"  # a maintainer's `/preview up` approves the SHA it saw
    NEVER = "never"


class CommandsSpec(StrictModel):
    min_permission: Permission = Permission.WRITE


class DeploySpec(StrictModel):
    drafts: bool = False
    require_label: str | None = Field(None, description="Deploy only PRs with this label.")
    forks: ForkPolicy = ForkPolicy.APPROVAL


class NamingSpec(StrictModel):
    prefix: str = Field("", description="Namespace prefix when repositories share a cluster.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not is_valid_prefix(value):
            raise ValueError(
                f"{value!r} must be empty or a lowercase DNS fragment ending in one '-', "
                f"at most {MAX_PREFIX} characters, e.g. 'shop-'"
            )
        return value


class EnvironmentSpec(StrictModel):
    """One repository's preview environments (file format version 1)."""

    version: Literal[1] = Field(description="Spec format version; this provisioner reads 1.")
    image: ImageSpec
    url: UrlSpec
    app: AppSpec = AppSpec()
    database: DatabaseSpec = DatabaseSpec()
    seed: SeedSpec = SeedSpec()
    ttl: Duration = Field(timedelta(hours=72), description="Lifetime without activity.")
    quota: QuotaSpec = QuotaSpec()
    security: SecuritySpec = SecuritySpec()
    commands: CommandsSpec = CommandsSpec()
    deploy: DeploySpec = DeploySpec()
    naming: NamingSpec = NamingSpec()

    @model_validator(mode="after")
    def _seed_needs_database(self) -> EnvironmentSpec:
        if self.seed.mode is not SeedMode.NONE and not self.database.enabled:
            raise ValueError("seed.mode needs database.enabled: true")
        source = self.seed.source_url_env
        leaked = [k for k, v in self.app.secret_env.items() if source and v.from_env == source]
        if leaked:
            raise ValueError(
                f"app.secret_env.{leaked[0]} names {source}, the anonymisation source's URL"
                " (seed.source_url_env): production data never reaches a preview's app"
            )
        return self


def json_schema() -> dict[str, Any]:
    """JSON Schema of the spec file, for editors (yaml-language-server)."""
    schema = EnvironmentSpec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "preview-envs environment spec"
    return schema
