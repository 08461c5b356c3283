"""The fence around one environment: Pod Security, quota and limits, network policy, RBAC."""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    LimitRangeItemArgs,
    LimitRangeSpecArgs,
    PodSecurityContextArgs,
    ResourceQuotaSpecArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs
from pulumi_kubernetes.networking.v1 import (
    IPBlockArgs,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)
from pulumi_kubernetes.rbac.v1 import RoleRefArgs, SubjectArgs

from stacks.scope import (
    APP,
    Scope,
)
from stacks.spec import ENVIRONMENT_ROLE, IsolationSpec

# What a container may write outside its volumes (logs, a writable layer), by default.
EPHEMERAL_REQUEST, EPHEMERAL_LIMIT = "64Mi", "1Gi"


def pod_security_labels(level: str) -> dict[str, str]:
    """Pod Security Admission enforces ``level`` on the namespace; warn and audit say so too."""
    return {
        f"pod-security.kubernetes.io/{mode}{suffix}": value
        for mode in ("enforce", "warn", "audit")
        for suffix, value in (("", level), ("-version", "latest"))
    }


def pod_security_context(
    isolation: IsolationSpec, user: int | None = None
) -> PodSecurityContextArgs:
    """What every pod of a preview runs with: RuntimeDefault seccomp; non-root where restricted."""
    return PodSecurityContextArgs(
        run_as_non_root=True if isolation.restricted or user is not None else None,
        run_as_user=user,
        run_as_group=user,
        fs_group=user,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context(
    isolation: IsolationSpec, read_only: bool = False
) -> SecurityContextArgs:
    """No privilege escalation; under ``restricted`` every capability dropped too."""
    return SecurityContextArgs(
        allow_privilege_escalation=False,
        capabilities=CapabilitiesArgs(drop=["ALL"]) if isolation.restricted else None,
        read_only_root_filesystem=True if read_only else None,
    )


def bind_provisioner(
    scope: Scope, account: str, opts: pulumi.ResourceOptions
) -> k8s.rbac.v1.RoleBinding:
    """Bind the provisioner's ServiceAccount to the environment role, here only."""
    account_namespace, account_name = account.split("/", 1)
    return k8s.rbac.v1.RoleBinding(
        f"{scope.name}-provisioner",
        metadata=scope.meta("preview-envs-provisioner"),
        role_ref=RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=ENVIRONMENT_ROLE
        ),
        subjects=[
            SubjectArgs(kind="ServiceAccount", name=account_name, namespace=account_namespace)
        ],
        opts=opts,
    )


def guard_rails(scope: Scope, opts: pulumi.ResourceOptions) -> None:
    """Quota, default limits and the network fence, before anything runs."""
    spec = scope.spec
    quota = spec.quota
    k8s.core.v1.ResourceQuota(
        f"{scope.name}-quota",
        metadata=scope.meta("preview-quota"),
        spec=ResourceQuotaSpecArgs(
            hard={
                "requests.cpu": quota.cpu,
                "limits.cpu": quota.cpu,
                "requests.memory": quota.memory,
                "limits.memory": quota.memory,
                "requests.storage": quota.storage,
                "requests.ephemeral-storage": quota.ephemeral_storage,
                "limits.ephemeral-storage": quota.ephemeral_storage,
                "pods": str(quota.pods),
                "persistentvolumeclaims": "5",
                "services.loadbalancers": "0",
                "services.nodeports": "0",
            }
        ),
        opts=opts,
    )
    ephemeral = {"ephemeral-storage": EPHEMERAL_LIMIT}
    k8s.core.v1.LimitRange(
        f"{scope.name}-limits",
        metadata=scope.meta("preview-limits"),
        spec=LimitRangeSpecArgs(
            limits=[
                LimitRangeItemArgs(
                    type="Container",
                    default=spec.default_limits.limits.as_dict() | ephemeral,
                    default_request=spec.default_limits.requests.as_dict()
                    | {"ephemeral-storage": EPHEMERAL_REQUEST},
                )
            ]
        ),
        opts=opts,
    )
    network_fence(scope, opts)


def policy(
    scope: Scope,
    name: str,
    opts: pulumi.ResourceOptions,
    component: str | None,
    ingress: list[NetworkPolicyIngressRuleArgs] | None = None,
    egress: list[NetworkPolicyEgressRuleArgs] | None = None,
) -> None:
    """A NetworkPolicy that opens ``ingress``/``egress`` to ``component``'s pods (all: None)."""
    selector = LabelSelectorArgs(match_labels=scope.selector(component) if component else None)
    k8s.networking.v1.NetworkPolicy(
        f"{scope.name}-{name}",
        metadata=scope.meta(name),
        spec=NetworkPolicySpecArgs(
            pod_selector=selector,
            policy_types=[t for t, r in (("Ingress", ingress), ("Egress", egress)) if r],
            ingress=ingress,
            egress=egress,
        ),
        opts=opts,
    )


def network_fence(scope: Scope, opts: pulumi.ResourceOptions) -> None:
    """Deny every connection both ways, then open exactly what a preview needs.

    Policies add up: ``default-deny`` selects every pod for both
    directions with no rule, so only what another policy opens flows.
    In: the ingress controller to the app's port; the app (and the
    seeder, see ``_database``) to PostgreSQL. Out: DNS, the namespace
    itself, and the spec's allow-list, never the metadata address or
    the API server unless the spec says so.
    """
    spec, isolation = scope.spec, scope.spec.isolation
    k8s.networking.v1.NetworkPolicy(
        f"{scope.name}-default-deny",
        metadata=scope.meta("default-deny"),
        spec=NetworkPolicySpecArgs(
            pod_selector=LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
        ),
        opts=opts,
    )
    dns = [
        NetworkPolicyPortArgs(port=53, protocol="UDP"),
        NetworkPolicyPortArgs(port=53, protocol="TCP"),
    ]
    own = NetworkPolicyPeerArgs(pod_selector=LabelSelectorArgs())
    anywhere = NetworkPolicyPeerArgs(namespace_selector=LabelSelectorArgs())
    policy(
        scope,
        "allow-dns-and-namespace",
        opts,
        None,
        egress=[
            NetworkPolicyEgressRuleArgs(to=[anywhere], ports=dns),
            NetworkPolicyEgressRuleArgs(to=[own]),
        ],
    )
    controller = NetworkPolicyPeerArgs(
        namespace_selector=LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": spec.ingress.controller_namespace}
        )
    )
    policy(
        scope,
        "allow-ingress-controller",
        opts,
        APP,
        ingress=[
            NetworkPolicyIngressRuleArgs(
                from_=[controller],
                ports=[NetworkPolicyPortArgs(port=spec.app.port, protocol="TCP")],
            )
        ],
    )
    if isolation.egress:
        excepted = list(isolation.excepted())
        rules = [
            NetworkPolicyEgressRuleArgs(
                to=[
                    NetworkPolicyPeerArgs(
                        ip_block=IPBlockArgs(
                            cidr=rule.cidr,
                            except_=[c for c in excepted if _within(c, rule.cidr)] or None,
                        )
                    )
                ],
                ports=[NetworkPolicyPortArgs(port=p, protocol=rule.protocol) for p in rule.ports]
                or None,
            )
            for rule in isolation.egress
        ]
        policy(scope, "allow-egress-list", opts, None, egress=rules)


def _within(address: str, cidr: str) -> bool:
    """Whether ``address`` (a CIDR) lies inside ``cidr``: only then may it be excepted."""
    inner, outer = ipaddress.ip_network(address), ipaddress.ip_network(cidr, strict=False)
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
