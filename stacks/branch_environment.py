"""The BranchEnvironment component: one pull request's namespace and everything in it.

Objects get fixed, readable names inside their own namespace (``app``,
``postgres``, ``db-credentials``), so a person debugging a preview with
kubectl finds them without reading Pulumi state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import (
    DeploymentSpecArgs,
    StatefulSetSpecArgs,
)
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    ExecActionArgs,
    HTTPGetActionArgs,
    LimitRangeItemArgs,
    LimitRangeSpecArgs,
    PersistentVolumeClaimArgs,
    PersistentVolumeClaimSpecArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceQuotaSpecArgs,
    SeccompProfileArgs,
    SecretKeySelectorArgs,
    SecurityContextArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.core.v1 import ResourceRequirementsArgs as Requirements
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    HTTPIngressPathArgs,
    HTTPIngressRuleValueArgs,
    IngressBackendArgs,
    IngressRuleArgs,
    IngressServiceBackendArgs,
    IngressSpecArgs,
    IngressTLSArgs,
    IPBlockArgs,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
    ServiceBackendPortArgs,
)
from pulumi_kubernetes.rbac.v1 import RoleRefArgs, SubjectArgs

from stacks.spec import (
    DATABASE_PORT,
    DATABASE_SERVICE,
    ENVIRONMENT_ROLE,
    IsolationSpec,
    ResourceSpec,
    StackSpec,
)

# Every object is applied by one stable field manager, forced: the stack is the only
# owner of what it creates. Without it, each resource gets a random manager kept in the
# state, and an object a killed update created but never recorded comes back under a new
# one, which the API server refuses for atomic fields it defaults (a StatefulSet's
# volumeClaimTemplates): the next update could never converge.
APPLY_AS = {"pulumi.com/patchFieldManager": "preview-envs", "pulumi.com/patchForce": "true"}
COMPONENT_TYPE = "preview-envs:index:BranchEnvironment"
APP = "app"
POSTGRES = DATABASE_SERVICE
DB_SECRET = "db-credentials"
APP_SECRET = "app-secrets"
POSTGRES_PORT = DATABASE_PORT
POSTGRES_UID = 999  # the postgres user of the Debian-based PostgreSQL images
# What a container may write outside its volumes (logs, a writable layer), by default.
EPHEMERAL_REQUEST, EPHEMERAL_LIMIT = "64Mi", "1Gi"


def _requirements(spec: ResourceSpec) -> Requirements:
    return Requirements(requests=spec.requests.as_dict(), limits=spec.limits.as_dict())


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


def database_url(spec: StackSpec, password: pulumi.Input[str]) -> pulumi.Output[str]:
    """In-cluster URL of the environment's database (a secret output)."""
    db = spec.database
    assert db is not None
    host = f"{POSTGRES}.{spec.namespace}.svc.cluster.local"
    return pulumi.Output.secret(
        pulumi.Output.concat(
            "postgresql://", db.user, ":", password, "@", host, f":{POSTGRES_PORT}/", db.database
        )
    )


class BranchEnvironment(pulumi.ComponentResource):
    """Namespace, guard rails, PostgreSQL and the promoted app for one PR."""

    url: pulumi.Output[str]
    namespace: pulumi.Output[str]
    database_service: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: StackSpec,
        db_password: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._spec = spec
        self._name = name
        child = pulumi.ResourceOptions(parent=self)

        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=ObjectMetaArgs(
                name=spec.namespace,
                labels={**spec.labels, **pod_security_labels(spec.isolation.pod_security)},
                annotations={**spec.annotations, **APPLY_AS},
            ),
            opts=child,
        )
        self._ns_name = ns.metadata.name
        inside = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        if spec.provisioner is not None:
            # The provisioner's rights in this namespace: created first, deleted last.
            binding = self._bind_provisioner(name, spec.provisioner, inside)
            inside = pulumi.ResourceOptions(parent=self, depends_on=[ns, binding])
        self._guard_rails(name, inside)

        env: list[EnvVarArgs] = [
            EnvVarArgs(name=k, value=v) for k, v in sorted(spec.app.env.items())
        ]
        if spec.app.secret_env:
            k8s.core.v1.Secret(
                f"{name}-app-secrets",
                metadata=self._meta(APP_SECRET),
                string_data=pulumi.Output.secret(dict(spec.app.secret_env)),
                opts=inside,
            )
            env += [
                EnvVarArgs(name=k, value_from=self._secret_ref(APP_SECRET, k))
                for k in sorted(spec.app.secret_env)
            ]

        db_service = ""
        app_opts = inside
        if spec.database is not None:
            if db_password is None:
                raise ValueError("a database needs a password (kept as a Pulumi secret)")
            secret, statefulset = self._database(name, db_password, inside)
            env.append(
                EnvVarArgs(name="DATABASE_URL", value_from=self._secret_ref(DB_SECRET, "url"))
            )
            db_service = f"{POSTGRES}.{spec.namespace}.svc.cluster.local:{POSTGRES_PORT}"
            app_opts = pulumi.ResourceOptions(parent=self, depends_on=[ns, secret, statefulset])

        self._app(name, env, app_opts)

        self.url = pulumi.Output.from_input(spec.url)
        self.namespace = self._ns_name
        self.database_service = pulumi.Output.from_input(db_service)
        self.register_outputs(
            {
                "url": self.url,
                "namespace": self.namespace,
                "database_service": self.database_service,
            }
        )

    # -- helpers -----------------------------------------------------------

    def _meta(self, name: str, component: str | None = None) -> ObjectMetaArgs:
        labels = dict(self._spec.labels)
        if component:
            labels["app.kubernetes.io/name"] = component
        return ObjectMetaArgs(
            name=name, namespace=self._ns_name, labels=labels, annotations=dict(APPLY_AS)
        )

    @staticmethod
    def _secret_ref(secret: str, key: str) -> EnvVarSourceArgs:
        return EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=secret, key=key))

    @staticmethod
    def _selector(component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": component}

    def _bind_provisioner(
        self, name: str, account: str, opts: pulumi.ResourceOptions
    ) -> k8s.rbac.v1.RoleBinding:
        """Bind the provisioner's ServiceAccount to the environment role, here only."""
        account_namespace, account_name = account.split("/", 1)
        return k8s.rbac.v1.RoleBinding(
            f"{name}-provisioner",
            metadata=self._meta("preview-envs-provisioner"),
            role_ref=RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=ENVIRONMENT_ROLE
            ),
            subjects=[
                SubjectArgs(kind="ServiceAccount", name=account_name, namespace=account_namespace)
            ],
            opts=opts,
        )

    def _guard_rails(self, name: str, opts: pulumi.ResourceOptions) -> None:
        """Quota, default limits and the network fence, before anything runs."""
        spec = self._spec
        quota = spec.quota
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=self._meta("preview-quota"),
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
            f"{name}-limits",
            metadata=self._meta("preview-limits"),
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
        self._network_fence(name, opts)

    def _policy(
        self,
        name: str,
        opts: pulumi.ResourceOptions,
        component: str | None,
        ingress: list[NetworkPolicyIngressRuleArgs] | None = None,
        egress: list[NetworkPolicyEgressRuleArgs] | None = None,
    ) -> None:
        """A NetworkPolicy that opens ``ingress``/``egress`` to ``component``'s pods (all: None)."""
        selector = LabelSelectorArgs(match_labels=self._selector(component) if component else None)
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{name}",
            metadata=self._meta(name),
            spec=NetworkPolicySpecArgs(
                pod_selector=selector,
                policy_types=[t for t, r in (("Ingress", ingress), ("Egress", egress)) if r],
                ingress=ingress,
                egress=egress,
            ),
            opts=opts,
        )

    def _network_fence(self, name: str, opts: pulumi.ResourceOptions) -> None:
        """Deny every connection both ways, then open exactly what a preview needs.

        Policies add up: ``default-deny`` selects every pod for both
        directions with no rule, so only what another policy opens flows.
        In: the ingress controller to the app's port; the app (and the
        seeder, see ``_database``) to PostgreSQL. Out: DNS, the namespace
        itself, and the spec's allow-list, never the metadata address or
        the API server unless the spec says so.
        """
        spec, isolation = self._spec, self._spec.isolation
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=self._meta("default-deny"),
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
        self._policy(
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
        self._policy(
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
                    ports=[
                        NetworkPolicyPortArgs(port=p, protocol=rule.protocol) for p in rule.ports
                    ]
                    or None,
                )
                for rule in isolation.egress
            ]
            self._policy("allow-egress-list", opts, None, egress=rules)

    def _database(
        self, name: str, password: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> tuple[k8s.core.v1.Secret, k8s.apps.v1.StatefulSet]:
        spec = self._spec
        db = spec.database
        assert db is not None
        secret = k8s.core.v1.Secret(
            f"{name}-db-credentials",
            metadata=self._meta(DB_SECRET),
            string_data={
                "username": db.user,
                "password": pulumi.Output.secret(password),
                "database": db.database,
                "url": database_url(spec, password),
            },
            opts=opts,
        )
        self._policy(
            "allow-app-to-database",
            opts,
            POSTGRES,
            ingress=[
                NetworkPolicyIngressRuleArgs(
                    from_=[
                        NetworkPolicyPeerArgs(
                            pod_selector=LabelSelectorArgs(match_labels=self._selector(APP))
                        )
                    ],
                    ports=[NetworkPolicyPortArgs(port=POSTGRES_PORT, protocol="TCP")],
                )
            ],
        )
        if db.seeder_namespace:
            # Additive to the default deny: only the database port, only from the
            # provisioner's namespace, whose worker seeds and reseeds the data.
            k8s.networking.v1.NetworkPolicy(
                f"{name}-allow-seeding",
                metadata=self._meta("allow-seeding"),
                spec=NetworkPolicySpecArgs(
                    pod_selector=LabelSelectorArgs(match_labels=self._selector(POSTGRES)),
                    policy_types=["Ingress"],
                    ingress=[
                        NetworkPolicyIngressRuleArgs(
                            from_=[
                                NetworkPolicyPeerArgs(
                                    namespace_selector=LabelSelectorArgs(
                                        match_labels={
                                            "kubernetes.io/metadata.name": db.seeder_namespace
                                        }
                                    )
                                )
                            ],
                            ports=[NetworkPolicyPortArgs(port=POSTGRES_PORT, protocol="TCP")],
                        )
                    ],
                ),
                opts=opts,
            )
        # A read-only root: the server writes only its data, its socket and temporary files.
        volumes = [VolumeArgs(name=v, empty_dir=EmptyDirVolumeSourceArgs()) for v in ("run", "tmp")]
        mounts = [
            VolumeMountArgs(name="data", mount_path="/var/lib/postgresql/data"),
            VolumeMountArgs(name="run", mount_path="/var/run/postgresql"),
            VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        if db.extensions:
            init_sql = "".join(f'CREATE EXTENSION IF NOT EXISTS "{e}";\n' for e in db.extensions)
            k8s.core.v1.ConfigMap(
                f"{name}-postgres-init",
                metadata=self._meta("postgres-init", POSTGRES),
                data={"00-extensions.sql": init_sql},
                opts=opts,
            )
            volumes.append(
                VolumeArgs(name="init", config_map=ConfigMapVolumeSourceArgs(name="postgres-init"))
            )
            mounts.append(VolumeMountArgs(name="init", mount_path="/docker-entrypoint-initdb.d"))

        k8s.core.v1.Service(
            f"{name}-postgres-service",
            metadata=self._meta(POSTGRES, POSTGRES),
            spec=ServiceSpecArgs(
                cluster_ip="None",
                selector=self._selector(POSTGRES),
                ports=[ServicePortArgs(name="postgres", port=POSTGRES_PORT)],
            ),
            opts=opts,
        )
        ready = ProbeArgs(
            exec_=ExecActionArgs(command=["pg_isready", "-U", db.user, "-d", db.database]),
            period_seconds=2,
            failure_threshold=30,
        )
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-postgres",
            metadata=self._meta(POSTGRES, POSTGRES),
            spec=StatefulSetSpecArgs(
                service_name=POSTGRES,
                replicas=1,
                selector=LabelSelectorArgs(match_labels=self._selector(POSTGRES)),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels={**spec.labels, **self._selector(POSTGRES)}),
                    spec=PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=pod_security_context(spec.isolation, POSTGRES_UID),
                        containers=[
                            ContainerArgs(
                                name=POSTGRES,
                                security_context=container_security_context(
                                    spec.isolation, read_only=True
                                ),
                                image=db.image,
                                ports=[
                                    ContainerPortArgs(name="postgres", container_port=POSTGRES_PORT)
                                ],
                                env=[
                                    EnvVarArgs(
                                        name="POSTGRES_USER",
                                        value_from=self._secret_ref(DB_SECRET, "username"),
                                    ),
                                    EnvVarArgs(
                                        name="POSTGRES_PASSWORD",
                                        value_from=self._secret_ref(DB_SECRET, "password"),
                                    ),
                                    EnvVarArgs(
                                        name="POSTGRES_DB",
                                        value_from=self._secret_ref(DB_SECRET, "database"),
                                    ),
                                    EnvVarArgs(
                                        name="PGDATA", value="/var/lib/postgresql/data/pgdata"
                                    ),
                                ],
                                readiness_probe=ready,
                                resources=_requirements(db.resources),
                                volume_mounts=mounts,
                            )
                        ],
                        volumes=volumes,
                    ),
                ),
                volume_claim_templates=[
                    PersistentVolumeClaimArgs(
                        metadata=ObjectMetaArgs(name="data", labels=dict(spec.labels)),
                        spec=PersistentVolumeClaimSpecArgs(
                            access_modes=["ReadWriteOnce"],
                            resources=VolumeResourceRequirementsArgs(
                                requests={"storage": db.storage}
                            ),
                        ),
                    )
                ],
            ),
            opts=opts,
        )
        return secret, statefulset

    def _app(self, name: str, env: list[EnvVarArgs], opts: pulumi.ResourceOptions) -> None:
        spec = self._spec
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
        own = self._meta(APP, APP)
        k8s.apps.v1.Deployment(
            f"{name}-app",
            metadata=ObjectMetaArgs(
                name=own.name,
                namespace=own.namespace,
                labels=own.labels,
                annotations={**APPLY_AS, "pulumi.com/skipAwait": "true"},
            ),
            spec=DeploymentSpecArgs(
                replicas=app.replicas,
                progress_deadline_seconds=app.rollout_timeout_s,
                selector=LabelSelectorArgs(match_labels=self._selector(APP)),
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels={**spec.labels, **self._selector(APP)}),
                    spec=PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=pod_security_context(spec.isolation),
                        containers=[
                            ContainerArgs(
                                name=APP,
                                security_context=container_security_context(spec.isolation),
                                image=app.image,
                                command=list(app.command) if app.command else None,
                                args=list(app.args) if app.args else None,
                                ports=[ContainerPortArgs(name="http", container_port=app.port)],
                                env=env or None,
                                readiness_probe=ProbeArgs(http_get=probe, period_seconds=2),
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
        k8s.core.v1.Service(
            f"{name}-app-service",
            metadata=self._meta(APP, APP),
            spec=ServiceSpecArgs(
                selector=self._selector(APP),
                ports=[ServicePortArgs(name="http", port=80, target_port="http")],
            ),
            opts=opts,
        )
        ingress = spec.ingress
        annotations: Mapping[str, str] = (
            {"cert-manager.io/cluster-issuer": ingress.cluster_issuer}
            if ingress.cluster_issuer
            else {}
        )
        tls_secret = ingress.tls_secret or (f"{APP}-tls" if ingress.cluster_issuer else None)
        meta = self._meta(APP, APP)
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=ObjectMetaArgs(
                name=meta.name,
                namespace=meta.namespace,
                labels=meta.labels,
                annotations={**annotations, **APPLY_AS},
            ),
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


def _within(address: str, cidr: str) -> bool:
    """Whether ``address`` (a CIDR) lies inside ``cidr``: only then may it be excepted."""
    inner, outer = ipaddress.ip_network(address), ipaddress.ip_network(cidr, strict=False)
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
