"""The promoted app: its Deployment, Service and Ingress."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgs
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    EnvVarArgs,
    HTTPGetActionArgs,
    LifecycleArgs,
    LifecycleHandlerArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    SleepActionArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    HTTPIngressPathArgs,
    HTTPIngressRuleValueArgs,
    IngressBackendArgs,
    IngressRuleArgs,
    IngressServiceBackendArgs,
    IngressSpecArgs,
    IngressTLSArgs,
    ServiceBackendPortArgs,
)

from stacks.database import _requirements, wait_until_ready
from stacks.fence import container_security_context, pod_security_context
from stacks.scope import (
    APP,
    Scope,
)

# Seconds a terminating app pod keeps serving (preStop), so that endpoints and the ingress
# controller drop it before it stops: well within the default 30 s grace period.
DRAIN_S = 5


def create(scope: Scope, env: list[EnvVarArgs], opts: pulumi.ResourceOptions) -> None:
    """The Deployment of the promoted image, its Service, and the Ingress to it."""
    _deployment(scope, env, opts)
    _service(scope, opts)
    _ingress(scope, opts)


def _deployment(scope: Scope, env: list[EnvVarArgs], opts: pulumi.ResourceOptions) -> None:
    spec = scope.spec
    app = spec.app
    probe = HTTPGetActionArgs(path=app.health_path, port="http")
    # A rollout that cannot finish fails the update once the deadline passes (the
    # controller marks ProgressDeadlineExceeded) while the old pods keep serving;
    # the engine's own timeout is only a backstop behind it.
    backstop = f"{app.rollout_timeout_s + 60}s"
    deployment_opts = pulumi.ResourceOptions.merge(
        opts,
        pulumi.ResourceOptions(
            custom_timeouts=pulumi.CustomTimeouts(create=backstop, update=backstop)
        ),
    )
    # The engine waits for the rollout itself (stacks.rollout): it reads the new
    # pods too, so an image that can never start (root under `restricted`, not in
    # the registry, crashing) fails the update at once, with the kubelet's reason,
    # where the provider's own wait would sit out the whole progress deadline.
    k8s.apps.v1.Deployment(
        f"{scope.name}-app",
        metadata=scope.meta(APP, APP, {"pulumi.com/skipAwait": "true"}),
        spec=DeploymentSpecArgs(
            replicas=app.replicas,
            progress_deadline_seconds=app.rollout_timeout_s,
            selector=LabelSelectorArgs(match_labels=scope.selector(APP)),
            template=PodTemplateSpecArgs(
                metadata=ObjectMetaArgs(labels={**spec.labels, **scope.selector(APP)}),
                spec=PodSpecArgs(
                    automount_service_account_token=False,
                    security_context=pod_security_context(spec.isolation),
                    init_containers=[wait_until_ready(spec)] if spec.database else None,
                    containers=[
                        ContainerArgs(
                            name=APP,
                            security_context=container_security_context(spec.isolation),
                            image=app.image,
                            command=list(app.command) if app.command else None,
                            args=list(app.args) if app.args else None,
                            ports=[ContainerPortArgs(name="http", container_port=app.port)],
                            env=env or None,
                            readiness_probe=ProbeArgs(http_get=probe, period_seconds=1),
                            # An old pod keeps serving while the ingress controller
                            # learns it is going: a redeploy answers no 502s.
                            lifecycle=LifecycleArgs(
                                pre_stop=LifecycleHandlerArgs(
                                    sleep=SleepActionArgs(seconds=DRAIN_S)
                                )
                            ),
                            liveness_probe=ProbeArgs(
                                http_get=probe, initial_delay_seconds=10, period_seconds=10
                            ),
                            resources=_requirements(app.resources),
                        )
                    ],
                ),
            ),
        ),
        opts=deployment_opts,
    )


def _service(scope: Scope, opts: pulumi.ResourceOptions) -> None:
    # Its endpoints exist only once a pod is ready: the provider's await would hold the
    # update until the rollout's backstop for a version that crash-loops, where the
    # engine's own wait (stacks.rollout) says why at once.
    k8s.core.v1.Service(
        f"{scope.name}-app-service",
        metadata=scope.meta(APP, APP, {"pulumi.com/skipAwait": "true"}),
        spec=ServiceSpecArgs(
            selector=scope.selector(APP),
            ports=[ServicePortArgs(name="http", port=80, target_port="http")],
        ),
        opts=opts,
    )


def _ingress(scope: Scope, opts: pulumi.ResourceOptions) -> None:
    spec = scope.spec
    ingress = spec.ingress
    annotations: Mapping[str, str] = (
        {"cert-manager.io/cluster-issuer": ingress.cluster_issuer} if ingress.cluster_issuer else {}
    )
    tls_secret = ingress.tls_secret or (f"{APP}-tls" if ingress.cluster_issuer else None)
    k8s.networking.v1.Ingress(
        f"{scope.name}-ingress",
        metadata=scope.meta(APP, APP, annotations),
        spec=IngressSpecArgs(
            ingress_class_name=ingress.ingress_class,
            tls=[IngressTLSArgs(hosts=[ingress.host], secret_name=tls_secret)]
            if tls_secret
            else None,
            rules=[
                IngressRuleArgs(
                    host=ingress.host,
                    http=HTTPIngressRuleValueArgs(
                        paths=[
                            HTTPIngressPathArgs(
                                path="/",
                                path_type="Prefix",
                                backend=IngressBackendArgs(
                                    service=IngressServiceBackendArgs(
                                        name=APP, port=ServiceBackendPortArgs(name="http")
                                    )
                                ),
                            )
                        ]
                    ),
                )
            ],
        ),
        opts=opts,
    )
