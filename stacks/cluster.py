"""The cluster's own view of our namespaces and Deployments.

The only place outside the Pulumi engine that talks to the Kubernetes API:
the cleanup cron reads namespaces carrying our managed-by label and deletes
orphans; the engine reads back each update's Deployment (:mod:`stacks.rollout`).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from stacks.errors import ClusterUnreachable
from stacks.port_forward import forwarded

MANAGED_BY = "app.kubernetes.io/managed-by=preview-envs"


def _client(kubeconfig: str | None, context: str | None) -> Any:
    if kubeconfig is not None and "\n" in kubeconfig and not Path(kubeconfig).exists():
        contents = yaml.safe_load(kubeconfig)
        return config.new_client_from_config_dict(contents, context=context)  # type: ignore[no-untyped-call]
    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        except config.ConfigException:
            return config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]
    return config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context
    )


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    created_at: datetime
    terminating: bool
    deleting_since: datetime | None


class Cluster:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        """``kubeconfig`` is a path, or (as the Pulumi provider takes it) a kubeconfig's text."""
        kubeconfig, context = kubeconfig or None, context or None  # "" from the env: unset
        try:
            api = _client(kubeconfig, context)
        except config.ConfigException as exc:
            where = kubeconfig or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
            if "\n" in where:
                where = "the kubeconfig given"
            raise ClusterUnreachable(
                f"cannot use {where}{f' (context {context})' if context else ''}: {exc}; set"
                " PREVIEW_KUBECONFIG (and PREVIEW_KUBE_CONTEXT) to the cluster's"
            ) from None
        self._api = api
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._networking = client.NetworkingV1Api(api)

    def forward(
        self, namespace: str, pod: str, port: int
    ) -> AbstractContextManager[tuple[str, int]]:
        """A local address reaching ``pod:port`` through the API server (stacks.port_forward)."""
        return forwarded(self._core, namespace, pod, port)

    def namespaces(self) -> list[NamespaceInfo]:
        found = []
        for ns in self._core.list_namespace(label_selector=MANAGED_BY).items:
            meta = ns.metadata
            if meta is None or meta.name is None or meta.creation_timestamp is None:
                continue
            terminating = ns.status is not None and ns.status.phase == "Terminating"
            found.append(
                NamespaceInfo(
                    meta.name, meta.creation_timestamp, terminating, meta.deletion_timestamp
                )
            )
        return found

    def deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Deployment as the API server returns it (camelCase keys), or None if absent."""
        try:
            found = self._apps.read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self._api.sanitize_for_serialization(found)  # type: ignore[no-any-return]

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods a label selector picks, as the API server returns them (camelCase keys)."""
        found = self._core.list_namespaced_pod(namespace, label_selector=selector)
        return [self._api.sanitize_for_serialization(p) for p in found.items]

    def api_server_networks(self) -> tuple[str, ...]:
        """Where a pod reaches the API server: its Service's cluster IP and its endpoints.

        As /32 (or /128) networks, for egress rules to carve out: policies
        apply to the endpoint a connection is translated to as well as to
        the Service's address, depending on the network plugin.
        """
        found: list[str] = []
        service = self._core.read_namespaced_service("kubernetes", "default")
        if service.spec is not None:
            listed = service.spec.cluster_ips or []
            ips = [*listed, service.spec.cluster_ip or ""]
            found += [ip for ip in ips if ip and ip != "None"]
        slices = client.DiscoveryV1Api(self._api).list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=kubernetes"
        )
        for endpoint_slice in slices.items:
            for endpoint in endpoint_slice.endpoints or ():
                found += endpoint.addresses or []
        networks = (ipaddress.ip_network(address) for address in dict.fromkeys(found))
        return tuple(str(n) for n in networks)

    def delete_namespace(self, name: str) -> bool:
        """Delete one namespace; False if it was already gone."""
        return bool(_gone_or(partial(self._core.delete_namespace, name)))

    def tear_down_now(self, namespace: str, wait_s: float = 10.0) -> int:
        """Delete a namespace, then stop its workloads without grace and release their
        volumes while Kubernetes waits to empty it; return the pods killed.

        The namespace controller starts on a deleted namespace only after a fixed
        5 s, and then looks again only after a back-off: a pod's whole grace
        period (30 s by default) while pods terminate, several seconds while a
        volume claim still holds its protection finalizer. Done in those 5 s,
        the controller empties the namespace in one pass. Nothing can be
        created in a terminating namespace, so nothing starts again; updates and
        deletes still work. The claims are awaited (up to ``wait_s``). Best
        effort: what this may not do (a narrower role) the namespace's deletion
        still does, only slower.
        """
        if not self.delete_namespace(namespace):
            return 0
        zero = {"spec": {"replicas": 0}}
        for name in _names(self._apps.list_namespaced_deployment(namespace).items):
            self._apps.patch_namespaced_deployment(name, namespace, zero)
        for name in _names(self._apps.list_namespaced_stateful_set(namespace).items):
            self._apps.patch_namespaced_stateful_set(name, namespace, zero)
        kill = partial(self._core.delete_namespaced_pod, grace_period_seconds=0)
        killed = 0
        for name in _names(self._core.list_namespaced_pod(namespace).items):
            killed += _gone_or(partial(kill, name, namespace))
        claims = _names(self._core.list_namespaced_persistent_volume_claim(namespace).items)
        for name in claims:
            _gone_or(partial(self._core.delete_namespaced_persistent_volume_claim, name, namespace))
        deadline = time.monotonic() + wait_s
        while claims and time.monotonic() < deadline:
            time.sleep(0.2)
            claims = _names(self._core.list_namespaced_persistent_volume_claim(namespace).items)
        return killed

    def release_finalizers(self, namespace: str) -> int:
        """Clear finalizers on what is left in a Terminating namespace; return how many.

        Only the kinds our stack creates. A finalizer whose controller is gone
        (uninstalled, or never ran) holds the namespace in Terminating forever.
        """
        kinds: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
            (self._core.list_namespaced_config_map, self._core.patch_namespaced_config_map),
            (self._core.list_namespaced_secret, self._core.patch_namespaced_secret),
            (self._core.list_namespaced_service, self._core.patch_namespaced_service),
            (self._core.list_namespaced_pod, self._core.patch_namespaced_pod),
            (
                self._core.list_namespaced_persistent_volume_claim,
                self._core.patch_namespaced_persistent_volume_claim,
            ),
            (self._apps.list_namespaced_deployment, self._apps.patch_namespaced_deployment),
            (self._apps.list_namespaced_stateful_set, self._apps.patch_namespaced_stateful_set),
            (self._apps.list_namespaced_replica_set, self._apps.patch_namespaced_replica_set),
            (self._networking.list_namespaced_ingress, self._networking.patch_namespaced_ingress),
        ]
        released = 0
        for list_fn, patch_fn in kinds:
            for item in list_fn(namespace).items:
                if item.metadata and item.metadata.finalizers:
                    try:
                        patch_fn(item.metadata.name, namespace, {"metadata": {"finalizers": None}})
                    except ApiException as exc:
                        if exc.status != 404:
                            raise
                    released += 1
        return released


def _names(items: list[Any]) -> list[str]:
    return [item.metadata.name for item in items if item.metadata and item.metadata.name]


def _gone_or(delete: Callable[[], Any]) -> int:
    """1 if ``delete()`` deleted something, 0 if it was already gone."""
    try:
        delete()
    except ApiException as exc:
        if exc.status == 404:
            return 0
        raise
    return 1
