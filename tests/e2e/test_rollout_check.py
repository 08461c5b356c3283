"""The rollout check against a real API server and controller manager (kwok's nodes run the pods).

The Kubernetes provider once reported an over-quota version rolled out in a
third of a second: its wait ended on the update's first event, which still
carried the previous version's status. The engine now reads the Deployment
back after every update (:mod:`stacks.rollout`); here that read is shown
to see through exactly that stale state, and to fail with the
controller's own reason.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from stacks import rollout
from stacks.cluster import Cluster as Kubernetes
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e


def _deployment(cpu: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "app"}
    return {
        "metadata": {"name": "app", "labels": labels},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 10,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "app", "image": "ghcr.io/codertocat/hello-world@sha256:" + "5a" * 32,
                    "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}},
                }]},
            },
        },
    }  # fmt: skip


def test_a_stale_read_is_waited_out_and_an_over_quota_version_fails_with_its_reason(
    cluster: Cluster,
) -> None:
    namespace = f"rollout-check-{os.getpid()}"
    cluster.core.create_namespace({"metadata": {"name": namespace}})
    try:
        cluster.core.create_namespaced_resource_quota(
            namespace, {"metadata": {"name": "compute"}, "spec": {"hard": {"limits.cpu": "1"}}}
        )
        kubernetes = Kubernetes(str(cluster.kubeconfig))
        cluster.apps.create_namespaced_deployment(namespace, _deployment("500m"))
        said: list[str] = []
        rollout.wait(lambda: kubernetes.deployment(namespace, "app"), 120, said.append)
        assert rollout.assess(kubernetes.deployment(namespace, "app") or {}).done

        # The update's own response: the new generation, the old version's status.
        updated = cluster.apps.patch_namespaced_deployment(
            "app", namespace, {"spec": {"template": {"spec": {"containers": [
                {"name": "app", "resources": {"requests": {"cpu": "3"}, "limits": {"cpu": "3"}}}
            ]}}}},
        )  # fmt: skip
        stale = cluster.apps.api_client.sanitize_for_serialization(updated)
        assert stale["status"]["availableReplicas"] == 1  # what the provider took for done
        assert not rollout.assess(stale).done

        with pytest.raises(rollout.RolloutFailed) as failed:
            rollout.wait(lambda: kubernetes.deployment(namespace, "app"), 120, said.append)
        assert "timed out progressing" in str(failed.value)
        assert "exceeded quota" in str(failed.value)
        serving = kubernetes.deployment(namespace, "app") or {}
        assert serving["status"]["availableReplicas"] == 1, "the previous version keeps serving"
    finally:
        cluster.core.delete_namespace(namespace)
