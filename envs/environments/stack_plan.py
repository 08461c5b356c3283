"""From an environment spec and a pull request to the stack's input: pure.

This is where repository-level intent (the spec) meets one concrete PR (names,
promoted image, secret values). The result is a :class:`stacks.spec.StackSpec`;
nothing here talks to Pulumi or Kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from envs.core.errors import ConfigError
from envs.core.naming import EnvironmentNames, derive, slugify
from envs.core.spec import EnvironmentSpec, ResourceAmounts, Resources
from envs.environments.images import PromotedImage
from stacks.spec import (
    DEFAULT_INGRESS_NAMESPACE,
    Amounts,
    AppStackSpec,
    DatabaseStackSpec,
    EgressRule,
    IngressStackSpec,
    IsolationSpec,
    QuotaStackSpec,
    ResourceSpec,
    StackSpec,
)


def _amounts(amounts: ResourceAmounts) -> Amounts:
    return Amounts(cpu=amounts.cpu, memory=amounts.memory)


def _resources(resources: Resources) -> ResourceSpec:
    return ResourceSpec(requests=_amounts(resources.requests), limits=_amounts(resources.limits))


def preview_host(
    spec: EnvironmentSpec, repository: str, pr_number: int, names: EnvironmentNames
) -> str:
    owner, _, repo = repository.partition("/")
    return spec.url.host_template.format(
        name=names.host_label, pr=pr_number, owner=slugify(owner) or "x", repo=slugify(repo) or "x"
    )


def resolve_secret_env(spec: EnvironmentSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """Read preview-only secret values from the provisioner's environment."""
    missing = sorted(
        f"{name} (from {src.from_env})"
        for name, src in spec.app.secret_env.items()
        if src.from_env not in environ
    )
    if missing:
        raise ConfigError("secret_env values are not set on the provisioner: " + ", ".join(missing))
    return {name: environ[src.from_env] for name, src in spec.app.secret_env.items()}


@dataclass(frozen=True)
class PreviewPlan:
    """One pull request's image, names and stack input, checked and complete."""

    image: PromotedImage
    names: EnvironmentNames
    stack: StackSpec


@dataclass(frozen=True)
class Placement:
    """Where the provisioner runs and what it runs as: the cluster's facts a plan needs.

    ``service_account`` (``namespace/name``) is bound to the environment role
    inside each preview's namespace by the stack itself, so the provisioner
    needs no cluster-wide access to Secrets (.github/examples/kubernetes-rbac.yaml).
    """

    ingress_namespace: str = DEFAULT_INGRESS_NAMESPACE
    seeder_namespace: str | None = None
    service_account: str | None = None


def plan_preview(
    spec: EnvironmentSpec,
    repository: str,
    pr_number: int,
    branch: str,
    head_sha: str,
    image: str,
    environ: Mapping[str, str],
    placement: Placement | None = None,
    namespace: str | None = None,
) -> PreviewPlan:
    """Validate the promoted image and secrets, derive names, plan the stack.

    ``namespace`` keeps an existing environment's namespace (and stack): it
    is fixed at creation, so a renamed branch never orphans resources.
    """
    promoted = PromotedImage.parse(image, spec.image.repository)
    secret_env = resolve_secret_env(spec, environ)
    names = derive(repository, pr_number, branch, head_sha, spec.naming.prefix)
    if namespace is not None:
        names = replace(names, namespace=namespace, stack=namespace, host_label=namespace)
    stack = plan_stack(
        spec,
        repository,
        pr_number,
        names,
        promoted,
        secret_env,
        placement or Placement(),
    )
    return PreviewPlan(promoted, names, stack)


def plan_stack(
    spec: EnvironmentSpec,
    repository: str,
    pr_number: int,
    names: EnvironmentNames,
    image: PromotedImage,
    secret_env: Mapping[str, str],
    placement: Placement | None = None,
) -> StackSpec:
    """The complete, frozen input of the BranchEnvironment component."""
    placement = placement or Placement()
    app = spec.app
    db = spec.database
    tls = spec.url.tls
    return StackSpec(
        namespace=names.namespace,
        labels=names.labels,
        annotations={"preview-envs.dev/repository": repository},
        app=AppStackSpec(
            image=image.reference,
            port=app.port,
            health_path=app.health_path,
            replicas=app.replicas,
            env=dict(app.env),
            secret_env=dict(secret_env),
            resources=_resources(app.resources),
            command=app.command,
            args=app.args,
            rollout_timeout_s=int(app.rollout_timeout.total_seconds()),
        ),
        ingress=IngressStackSpec(
            host=preview_host(spec, repository, pr_number, names),
            ingress_class=spec.url.ingress_class,
            tls_secret=tls.secret_name if tls.enabled else None,
            cluster_issuer=tls.cluster_issuer if tls.enabled else None,
            controller_namespace=placement.ingress_namespace,
        ),
        database=DatabaseStackSpec(
            postgres_version=db.postgres_version,
            storage=db.storage,
            database=db.name,
            extensions=db.extensions,
            resources=_resources(db.resources),
            seeder_namespace=placement.seeder_namespace,
        )
        if db.enabled
        else None,
        quota=QuotaStackSpec(
            cpu=spec.quota.cpu,
            memory=spec.quota.memory,
            pods=spec.quota.pods,
            storage=spec.quota.storage,
            ephemeral_storage=spec.quota.ephemeral_storage,
        ),
        isolation=isolation_of(spec),
        provisioner=placement.service_account,
    )


def isolation_of(spec: EnvironmentSpec) -> IsolationSpec:
    """The spec's security section as the stack takes it (the engine adds the API's address)."""
    security = spec.security
    return IsolationSpec(
        pod_security=security.pod_security.value,
        egress=tuple(EgressRule(r.cidr, r.ports, r.protocol) for r in security.egress),
        allow_cloud_metadata=security.allow_cloud_metadata,
        allow_kubernetes_api=security.allow_kubernetes_api,
    )
