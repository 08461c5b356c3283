"""What every object of one environment shares: names, its namespace, its labels.

The BranchEnvironment component creates the namespace and hands a Scope to
the modules that fill it (stacks.fence, stacks.database, stacks.app), so
each object gets the same metadata and selectors wherever it is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.core.v1 import EnvVarSourceArgs, SecretKeySelectorArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from stacks.spec import DATABASE_PORT, DATABASE_SERVICE, StackSpec

# Every object is applied by one stable field manager, forced: the stack is the only
# owner of what it creates. Without it, each resource gets a random manager kept in the
# state, and an object a killed update created but never recorded comes back under a new
# one, which the API server refuses for atomic fields it defaults (a StatefulSet's
# volumeClaimTemplates): the next update could never converge.
APPLY_AS = {"pulumi.com/patchFieldManager": "preview-envs", "pulumi.com/patchForce": "true"}
APP = "app"
POSTGRES = DATABASE_SERVICE
DB_SECRET = "db-credentials"
APP_SECRET = "app-secrets"
POSTGRES_PORT = DATABASE_PORT


@dataclass(frozen=True)
class Scope:
    """One environment's objects: ``name`` prefixes their Pulumi names."""

    name: str
    spec: StackSpec
    namespace: pulumi.Output[str]

    def meta(
        self,
        name: str,
        component: str | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> ObjectMetaArgs:
        labels = dict(self.spec.labels)
        if component:
            labels["app.kubernetes.io/name"] = component
        return ObjectMetaArgs(
            name=name,
            namespace=self.namespace,
            labels=labels,
            annotations={**(annotations or {}), **APPLY_AS},
        )

    @staticmethod
    def secret_ref(secret: str, key: str) -> EnvVarSourceArgs:
        return EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=secret, key=key))

    @staticmethod
    def selector(component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": component}
