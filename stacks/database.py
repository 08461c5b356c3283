"""The environment's PostgreSQL: credentials, its network policies, the StatefulSet."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgs
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    PersistentVolumeClaimArgs,
    PersistentVolumeClaimSpecArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    SecurityContextArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TCPSocketActionArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.core.v1 import ResourceRequirementsArgs as Requirements
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
)

from stacks.fence import container_security_context, pod_security_context, policy
from stacks.scope import (
    APP,
    DB_SECRET,
    POSTGRES,
    POSTGRES_PORT,
    Scope,
)
from stacks.spec import SHA_LABEL, DatabaseStackSpec, ResourceSpec, StackSpec

POSTGRES_UID = 999  # the postgres user of the Debian-based PostgreSQL images


def _requirements(spec: ResourceSpec) -> Requirements:
    return Requirements(requests=spec.requests.as_dict(), limits=spec.limits.as_dict())


def wait_until_ready(spec: StackSpec) -> ContainerArgs:
    """An init container for the app's pods: done once the database accepts connections.

    The app is created with the database, not after it: its pod is scheduled,
    its image pulled and its sandbox made while PostgreSQL starts, and the app
    starts the moment the database answers, with no crash loop for an app that
    exits when its database is not there yet. It runs the database's own image
    (already on the node, and holding ``pg_isready``) as the database's user.
    """
    db = spec.database
    assert db is not None
    probe = f"until pg_isready -q -h {POSTGRES} -p {POSTGRES_PORT} -t 2; do sleep 0.3; done"
    return ContainerArgs(
        name="wait-for-database",
        image=db.image,
        command=["sh", "-c", probe],
        security_context=SecurityContextArgs(
            allow_privilege_escalation=False,
            capabilities=CapabilitiesArgs(drop=["ALL"]),
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=POSTGRES_UID,
            run_as_group=POSTGRES_UID,
        ),
        resources=Requirements(
            requests={"cpu": "10m", "memory": "16Mi"}, limits={"cpu": "100m", "memory": "32Mi"}
        ),
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


def create(
    scope: Scope, password: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> k8s.core.v1.Secret:
    """Credentials, who may connect, the headless Service and the StatefulSet.

    Returns the credentials' Secret, which the app's pods read.
    """
    db = scope.spec.database
    assert db is not None
    secret = _credentials(scope, db, password, opts)
    _admit_clients(scope, db, opts)
    volumes, mounts = _volumes(scope, db, opts)
    _service(scope, opts)
    _statefulset(scope, db, volumes, mounts, opts)
    return secret


def _credentials(
    scope: Scope, db: DatabaseStackSpec, password: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> k8s.core.v1.Secret:
    spec = scope.spec
    return k8s.core.v1.Secret(
        f"{scope.name}-db-credentials",
        metadata=scope.meta(DB_SECRET),
        string_data={
            "username": db.user,
            "password": pulumi.Output.secret(password),
            "database": db.database,
            "url": database_url(spec, password),
        },
        opts=opts,
    )


def _admit_clients(scope: Scope, db: DatabaseStackSpec, opts: pulumi.ResourceOptions) -> None:
    """The app's pods, and the provisioner's namespace when it seeds: the port, nothing else."""
    policy(
        scope,
        "allow-app-to-database",
        opts,
        POSTGRES,
        ingress=[
            NetworkPolicyIngressRuleArgs(
                from_=[
                    NetworkPolicyPeerArgs(
                        pod_selector=LabelSelectorArgs(match_labels=scope.selector(APP))
                    )
                ],
                ports=[NetworkPolicyPortArgs(port=POSTGRES_PORT, protocol="TCP")],
            )
        ],
    )
    if db.seeder_namespace:
        # Additive to the default deny: only the database port, only from the
        # provisioner's namespace, whose worker seeds and reseeds the data.
        seeder = LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": db.seeder_namespace}
        )
        policy(
            scope,
            "allow-seeding",
            opts,
            POSTGRES,
            ingress=[
                NetworkPolicyIngressRuleArgs(
                    from_=[NetworkPolicyPeerArgs(namespace_selector=seeder)],
                    ports=[NetworkPolicyPortArgs(port=POSTGRES_PORT, protocol="TCP")],
                )
            ],
        )


def _volumes(
    scope: Scope, db: DatabaseStackSpec, opts: pulumi.ResourceOptions
) -> tuple[list[VolumeArgs], list[VolumeMountArgs]]:
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
            f"{scope.name}-postgres-init",
            metadata=scope.meta("postgres-init", POSTGRES),
            data={"00-extensions.sql": init_sql},
            opts=opts,
        )
        volumes.append(
            VolumeArgs(name="init", config_map=ConfigMapVolumeSourceArgs(name="postgres-init"))
        )
        mounts.append(VolumeMountArgs(name="init", mount_path="/docker-entrypoint-initdb.d"))
    return volumes, mounts


def _service(scope: Scope, opts: pulumi.ResourceOptions) -> None:
    k8s.core.v1.Service(
        f"{scope.name}-postgres-service",
        metadata=scope.meta(POSTGRES, POSTGRES),
        spec=ServiceSpecArgs(
            cluster_ip="None",
            selector=scope.selector(POSTGRES),
            ports=[ServicePortArgs(name="postgres", port=POSTGRES_PORT)],
        ),
        opts=opts,
    )


def _statefulset(
    scope: Scope,
    db: DatabaseStackSpec,
    volumes: list[VolumeArgs],
    mounts: list[VolumeMountArgs],
    opts: pulumi.ResourceOptions,
) -> k8s.apps.v1.StatefulSet:
    spec = scope.spec
    stable = {k: v for k, v in spec.labels.items() if k != SHA_LABEL}
    # The server listens on TCP only once it is up (the entrypoint's setup server listens on
    # its socket alone): a TCP probe says "ready" as soon as it is, each second, for the
    # price of a connect, where an exec probe starts a process in the container each time.
    ready = ProbeArgs(
        tcp_socket=TCPSocketActionArgs(port=POSTGRES_PORT),
        period_seconds=1,
        failure_threshold=60,
    )
    return k8s.apps.v1.StatefulSet(
        f"{scope.name}-postgres",
        metadata=scope.meta(POSTGRES, POSTGRES),
        spec=StatefulSetSpecArgs(
            service_name=POSTGRES,
            replicas=1,
            selector=LabelSelectorArgs(match_labels=scope.selector(POSTGRES)),
            template=PodTemplateSpecArgs(
                metadata=ObjectMetaArgs(labels={**stable, **scope.selector(POSTGRES)}),
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
                                    value_from=scope.secret_ref(DB_SECRET, "username"),
                                ),
                                EnvVarArgs(
                                    name="POSTGRES_PASSWORD",
                                    value_from=scope.secret_ref(DB_SECRET, "password"),
                                ),
                                EnvVarArgs(
                                    name="POSTGRES_DB",
                                    value_from=scope.secret_ref(DB_SECRET, "database"),
                                ),
                                EnvVarArgs(name="PGDATA", value="/var/lib/postgresql/data/pgdata"),
                                # A preview's cluster is made to be thrown away: initdb need
                                # not wait for every file to reach the disk.
                                EnvVarArgs(name="POSTGRES_INITDB_ARGS", value="--no-sync"),
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
                    metadata=ObjectMetaArgs(name="data", labels=stable),
                    spec=PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"],
                        resources=VolumeResourceRequirementsArgs(requests={"storage": db.storage}),
                    ),
                )
            ],
        ),
        opts=opts,
    )
