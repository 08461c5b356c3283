"""The cluster's own view of our namespaces, for the cleanup cron.

The only place outside the Pulumi engine that talks to the Kubernetes API;
it reads namespaces carrying our managed-by label and deletes orphans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

MANAGED_BY = "app.kubernetes.io/managed-by=preview-envs"


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    created_at: datetime
    terminating: bool


class Cluster:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        if kubeconfig is None and context is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
                api = client.ApiClient()
            except config.ConfigException:
                api = config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]
        else:
            api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context
            )
        self._core = client.CoreV1Api(api)

    def namespaces(self) -> list[NamespaceInfo]:
        found = []
        for ns in self._core.list_namespace(label_selector=MANAGED_BY).items:
            meta = ns.metadata
            if meta is None or meta.name is None or meta.creation_timestamp is None:
                continue
            terminating = ns.status is not None and ns.status.phase == "Terminating"
            found.append(NamespaceInfo(meta.name, meta.creation_timestamp, terminating))
        return found

    def delete_namespace(self, name: str) -> bool:
        """Delete one namespace; False if it was already gone."""
        try:
            self._core.delete_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True
