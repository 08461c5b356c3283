"""The BranchEnvironment component: one pull request's namespace and everything in it.

Objects get fixed, readable names inside their own namespace (``app``,
``postgres``, ``db-credentials``), so a person debugging a preview with
kubectl finds them without reading Pulumi state. The namespace is made
here; what fills it is made by one module per concern: stacks.fence (Pod
Security, quota, network policy, RBAC), stacks.database and stacks.app.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import EnvVarArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from stacks import app, database, fence
from stacks.database import database_url
from stacks.scope import APP, APP_SECRET, APPLY_AS, DB_SECRET, POSTGRES, POSTGRES_PORT, Scope
from stacks.spec import StackSpec

COMPONENT_TYPE = "preview-envs:index:BranchEnvironment"
__all__ = ["APP", "APPLY_AS", "COMPONENT_TYPE", "BranchEnvironment", "database_url"]


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
        child = pulumi.ResourceOptions(parent=self)

        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=ObjectMetaArgs(
                name=spec.namespace,
                labels={**spec.labels, **fence.pod_security_labels(spec.isolation.pod_security)},
                annotations={**spec.annotations, **APPLY_AS},
            ),
            opts=child,
        )
        scope = Scope(name, spec, ns.metadata.name)
        # Everything below lives in the namespace: a teardown deletes the namespace
        # alone and Kubernetes removes the rest at once, instead of the engine
        # deleting each object and awaiting it, one after another.
        inside = pulumi.ResourceOptions(parent=self, depends_on=[ns], deleted_with=ns)
        if spec.provisioner is not None:
            # The provisioner's rights in this namespace: created first, deleted with it.
            binding = fence.bind_provisioner(scope, spec.provisioner, inside)
            inside = pulumi.ResourceOptions(parent=self, depends_on=[ns, binding], deleted_with=ns)
        fence.guard_rails(scope, inside)

        env: list[EnvVarArgs] = [
            EnvVarArgs(name=k, value=v) for k, v in sorted(spec.app.env.items())
        ]
        if spec.app.secret_env:
            k8s.core.v1.Secret(
                f"{name}-app-secrets",
                metadata=scope.meta(APP_SECRET),
                string_data=pulumi.Output.secret(dict(spec.app.secret_env)),
                opts=inside,
            )
            env += [
                EnvVarArgs(name=k, value_from=scope.secret_ref(APP_SECRET, k))
                for k in sorted(spec.app.secret_env)
            ]

        db_service = ""
        app_opts = inside
        if spec.database is not None:
            if db_password is None:
                raise ValueError("a database needs a password (kept as a Pulumi secret)")
            secret = database.create(scope, db_password, inside)
            env.append(
                EnvVarArgs(name="DATABASE_URL", value_from=scope.secret_ref(DB_SECRET, "url"))
            )
            db_service = f"{POSTGRES}.{spec.namespace}.svc.cluster.local:{POSTGRES_PORT}"
            # Not after the database's StatefulSet: the app's pods wait for it themselves
            # (database.wait_until_ready), so both start at once.
            app_opts = pulumi.ResourceOptions(parent=self, depends_on=[ns, secret], deleted_with=ns)

        app.create(scope, env, app_opts)

        self.url = pulumi.Output.from_input(spec.url)
        self.namespace = scope.namespace
        self.database_service = pulumi.Output.from_input(db_service)
        self.register_outputs(
            {
                "url": self.url,
                "namespace": self.namespace,
                "database_service": self.database_service,
            }
        )
