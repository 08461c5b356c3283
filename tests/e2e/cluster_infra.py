"""What a real cluster's infrastructure does that a bare control plane does not.

The local control plane has no ingress controller and no storage
provisioner (no container runtime exists here to run them). This stand-in
does their visible part, at the API boundary only:

* publishes a load-balancer address on every Ingress (as ingress-nginx does),
* keeps a pool of hostPath PersistentVolumes for claims to bind to, and makes
  released volumes available again (as a local-path provisioner would).

Production code never knows it is there. Run it by hand next to
``scripts/cluster up`` with ``python -m tests.e2e.cluster_infra KUBECONFIG``.
"""

from __future__ import annotations

import sys
import threading
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

POOL_SIZE = 40
INGRESS_IP = "127.0.0.1"


class ClusterInfra:
    def __init__(self, kubeconfig: str) -> None:
        api_client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure_volume_pool(self) -> None:
        existing = {pv.metadata.name for pv in self.core.list_persistent_volume().items}
        for index in range(POOL_SIZE):
            name = f"local-pv-{index:03d}"
            if name in existing:
                continue
            self.core.create_persistent_volume(
                client.V1PersistentVolume(
                    metadata=client.V1ObjectMeta(
                        name=name, labels={"e2e.preview-envs.dev/pool": "1"}
                    ),
                    spec=client.V1PersistentVolumeSpec(
                        capacity={"storage": "50Gi"},
                        access_modes=["ReadWriteOnce"],
                        persistent_volume_reclaim_policy="Retain",
                        host_path=client.V1HostPathVolumeSource(path=f"/tmp/preview-e2e/{name}"),
                    ),
                )
            )

    def reconcile_once(self) -> None:
        for ingress in self.networking.list_ingress_for_all_namespaces().items:
            status = ingress.status.load_balancer if ingress.status else None
            if not (status and status.ingress):
                try:
                    self.networking.patch_namespaced_ingress_status(
                        ingress.metadata.name,
                        ingress.metadata.namespace,
                        {"status": {"loadBalancer": {"ingress": [{"ip": INGRESS_IP}]}}},
                    )
                except ApiException as exc:
                    if exc.status not in (404, 409):
                        raise
        for pv in self.core.list_persistent_volume().items:
            if pv.status and pv.status.phase == "Released":
                self.core.patch_persistent_volume(pv.metadata.name, {"spec": {"claimRef": None}})

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_once()
            except Exception as exc:  # keep serving; the tests see the effect, or not
                print(f"cluster_infra: {exc}", file=sys.stderr)
            self._stop.wait(0.5)

    def start(self) -> ClusterInfra:
        self.ensure_volume_pool()
        self._thread = threading.Thread(target=self._loop, name="cluster-infra", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


if __name__ == "__main__":
    infra = ClusterInfra(sys.argv[1]).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        infra.stop()
