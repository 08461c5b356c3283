"""What one environment's stack needs, as plain frozen data.

The stack layer knows nothing of GitHub or of spec files: ``envs`` turns an
environment spec plus derived names into a :class:`StackSpec`, and the
Pulumi program is a pure function of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import quote

_DIGEST_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Amounts:
    cpu: str | None = None
    memory: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory)) if v is not None}


@dataclass(frozen=True)
class ResourceSpec:
    requests: Amounts = Amounts("100m", "128Mi")
    limits: Amounts = Amounts("500m", "512Mi")


@dataclass(frozen=True)
class AppStackSpec:
    image: str
    port: int = 8080
    health_path: str = "/healthz"
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    secret_env: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    resources: ResourceSpec = ResourceSpec()
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    rollout_timeout_s: int = 600  # the Deployment's progressDeadlineSeconds

    def __post_init__(self) -> None:
        if not _DIGEST_IMAGE.match(self.image):
            raise ValueError(
                f"image {self.image!r} must be pinned by digest (repository@sha256:<64 hex>): "
                "previews deploy exactly the image CI promoted, never a moving tag"
            )
        object.__setattr__(self, "env", _frozen(self.env))
        object.__setattr__(self, "secret_env", _frozen(self.secret_env))


# The label that changes with every deploy (the head commit): on the objects, never on the
# database's pod or claim templates, or each push would restart PostgreSQL.
SHA_LABEL = "preview-envs.dev/sha"

# The ClusterRole each preview binds its provisioner to (.github/examples/kubernetes-rbac.yaml).
ENVIRONMENT_ROLE = "preview-envs-environment"
DATABASE_SERVICE = "postgres"
DATABASE_PORT = 5432


IN_CLUSTER_ADDRESS = f"{DATABASE_SERVICE}.{{namespace}}.svc.cluster.local:{DATABASE_PORT}"
# PREVIEW_DATABASE_ADDRESS for a worker outside the cluster: each seed reaches the
# database's pod (the StatefulSet's only one) through the API server.
PORT_FORWARD = "port-forward"
DATABASE_POD = f"{DATABASE_SERVICE}-0"


def database_url(
    namespace: str, user: str, database: str, password: str, address: str = IN_CLUSTER_ADDRESS
) -> str:
    """The environment's database URL; ``address`` is host:port with ``{namespace}``."""
    where = address.format(namespace=namespace)
    return f"postgresql://{user}:{quote(password, safe='')}@{where}/{database}"


def database_password(key: str, stack_name: str) -> str:
    """The environment's database password, derived rather than stored.

    Stable across runs and replicas without any extra state (regenerating it
    would lock the app out of the data directory PostgreSQL initialised),
    different for every environment, and useless without the key.
    """
    digest = hmac.new(key.encode(), f"db-password\0{stack_name}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


@dataclass(frozen=True)
class DatabaseStackSpec:
    postgres_version: str = "15"
    storage: str = "1Gi"
    database: str = "app"
    user: str = "app"
    # The provisioner's namespace, admitted to the database port so its worker can seed.
    seeder_namespace: str | None = None
    extensions: tuple[str, ...] = ()
    resources: ResourceSpec = ResourceSpec(Amounts("100m", "256Mi"), Amounts("1", "1Gi"))

    @property
    def image(self) -> str:
        return f"postgres:{self.postgres_version}"


@dataclass(frozen=True)
class QuotaStackSpec:
    cpu: str = "2"
    memory: str = "4Gi"
    pods: int = 20
    storage: str = "10Gi"
    ephemeral_storage: str = "4Gi"  # container writable layers, logs, emptyDirs


# The cloud providers' instance metadata service: credentials of the node's identity.
METADATA_CIDR = "169.254.169.254/32"
POD_SECURITY_LEVELS = ("restricted", "baseline")


@dataclass(frozen=True)
class EgressRule:
    """Destinations a preview's pods may reach beyond DNS and their own namespace."""

    cidr: str
    ports: tuple[int, ...] = ()  # none: every port
    protocol: str = "TCP"


@dataclass(frozen=True)
class IsolationSpec:
    """How a preview is fenced in: its Pod Security level and what its pods may reach.

    ``denied`` are addresses no egress rule opens (the Kubernetes API server's,
    found by the engine), with the metadata address unless the spec allows it.
    """

    pod_security: str = "restricted"
    egress: tuple[EgressRule, ...] = ()
    allow_cloud_metadata: bool = False
    allow_kubernetes_api: bool = False
    denied: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pod_security not in POD_SECURITY_LEVELS:
            raise ValueError(
                f"pod security level {self.pod_security!r} is not one of {POD_SECURITY_LEVELS}:"
                " a preview runs a pull request's code, never privileged"
            )

    @property
    def restricted(self) -> bool:
        return self.pod_security == "restricted"

    def excepted(self) -> tuple[str, ...]:
        """Addresses carved out of every egress rule."""
        found = [] if self.allow_cloud_metadata else [METADATA_CIDR]
        if not self.allow_kubernetes_api:
            found += self.denied
        return tuple(dict.fromkeys(found))


# Where ingress-nginx's Helm chart installs the controller: the namespace a preview's
# NetworkPolicy admits by default (settings, spec and plan all default to this one name).
DEFAULT_INGRESS_NAMESPACE = "ingress-nginx"


@dataclass(frozen=True)
class IngressStackSpec:
    host: str
    ingress_class: str | None = "nginx"
    tls_secret: str | None = None
    cluster_issuer: str | None = None
    controller_namespace: str = DEFAULT_INGRESS_NAMESPACE


@dataclass(frozen=True)
class StackSpec:
    """Everything the BranchEnvironment component creates, decided up front."""

    namespace: str
    labels: Mapping[str, str]
    app: AppStackSpec
    ingress: IngressStackSpec
    database: DatabaseStackSpec | None = DatabaseStackSpec()
    quota: QuotaStackSpec = QuotaStackSpec()
    isolation: IsolationSpec = IsolationSpec()
    # namespace/name of the provisioner's ServiceAccount, bound to ENVIRONMENT_ROLE in this
    # namespace only (None: it runs with rights of its own, e.g. a person's kubeconfig).
    provisioner: str | None = None
    annotations: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    default_limits: ResourceSpec = ResourceSpec()

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))

    @property
    def url(self) -> str:
        scheme = "https" if self.ingress.tls_secret or self.ingress.cluster_issuer else "http"
        return f"{scheme}://{self.ingress.host}"
