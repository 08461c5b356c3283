"""`previewctl up / up again / down` against a real API server, real engine.

One environment goes through its whole life; each step checks what a person
would check with kubectl.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kubernetes.client.rest import ApiException

from tests.cli_runner import REPO_ROOT, stack_file
from tests.e2e.conftest import Cluster, previewctl

pytestmark = pytest.mark.e2e

SPEC = str(REPO_ROOT / "examples" / "minimal.yaml")
SHA_1, SHA_2 = "1" * 40, "2" * 40
IMAGE_1 = "ghcr.io/acme/shop@sha256:" + "1a" * 32
IMAGE_2 = "ghcr.io/acme/shop@sha256:" + "2b" * 32
NAMESPACE = "pr-42-feature-login"


def up(cluster: Cluster, state: Path, sha: str, image: str) -> tuple[int, str, str]:
    return previewctl(
        cluster,
        state,
        "up",
        "--repo",
        "acme/shop",
        "--pr",
        "42",
        "--branch",
        "feature-login",
        "--sha",
        sha,
        "--image",
        image,
        "--spec",
        SPEC,
        "--actor",
        "alice",
        "--json",
    )


def check_pod_security(cluster: Cluster) -> None:
    """The API server itself refuses a privileged pod in the preview's namespace.

    The app's and the database's pods were admitted under the same level
    (the Deployment and the StatefulSet are ready), so every pod the stack
    creates passes ``restricted``; a pod a pull request's code could ask
    for with host access or root does not.
    """
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "escape"},
        "spec": {
            "containers": [
                {"name": "x", "image": IMAGE_1, "securityContext": {"privileged": True}}
            ],
            "hostNetwork": True,
        },
    }
    with pytest.raises(ApiException) as refused:
        cluster.core.create_namespaced_pod(NAMESPACE, privileged, dry_run="All")
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)
    as_root = privileged | {"spec": {"containers": [{"name": "x", "image": IMAGE_1}]}}
    with pytest.raises(ApiException) as root:
        cluster.core.create_namespaced_pod(NAMESPACE, as_root, dry_run="All")
    assert "runAsNonRoot" in str(root.value.body), "restricted asks every pod to run as non-root"


def check_first_deploy(cluster: Cluster) -> None:
    """Namespace, guard rails, database and app as the first up left them."""
    ns = cluster.core.read_namespace(NAMESPACE)
    assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "preview-envs"
    assert ns.metadata.labels["preview-envs.dev/pr"] == "42"
    assert ns.metadata.labels["preview-envs.dev/repository"] == "acme.shop"
    assert ns.metadata.labels["preview-envs.dev/sha"] == SHA_1

    quota = cluster.core.read_namespaced_resource_quota("preview-quota", NAMESPACE)
    assert quota.spec.hard["limits.cpu"] == "2"
    assert quota.status.used is not None, "the quota controller accounted for the pods"
    policy = cluster.networking.read_namespaced_network_policy("default-deny", NAMESPACE)
    assert policy.spec.policy_types == ["Ingress", "Egress"]
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    check_pod_security(cluster)
    secret = cluster.core.read_namespaced_secret("db-credentials", NAMESPACE)
    assert set(secret.data) == {"username", "password", "database", "url"}

    deployment = cluster.apps.read_namespaced_deployment("app", NAMESPACE)
    assert deployment.spec.template.spec.containers[0].image == IMAGE_1
    assert deployment.status.available_replicas == 1
    statefulset = cluster.apps.read_namespaced_stateful_set("postgres", NAMESPACE)
    assert statefulset.status.ready_replicas == 1
    ingress = cluster.networking.read_namespaced_ingress("app", NAMESPACE)
    assert ingress.spec.rules[0].host == f"{NAMESPACE}.preview.acme.dev"


def test_environment_lifecycle_against_a_real_api_server(cluster: Cluster, tmp_path: Path) -> None:
    state = tmp_path / "state"

    started = time.monotonic()
    code, out, err = up(cluster, state, SHA_1, IMAGE_1)
    first_up_s = time.monotonic() - started
    assert code == 0, err
    env = json.loads(out)
    assert env["status"] == "ready"
    assert env["url"] == f"http://{NAMESPACE}.preview.acme.dev"
    print(f"first up: {first_up_s:.1f}s")

    check_first_deploy(cluster)

    # A push: the same environment rolls to the new digest.
    code, out, err = up(cluster, state, SHA_2, IMAGE_2)
    assert code == 0, err
    deployment = cluster.apps.read_namespaced_deployment("app", NAMESPACE)
    assert deployment.spec.template.spec.containers[0].image == IMAGE_2
    assert deployment.status.updated_replicas == 1
    assert cluster.core.read_namespace(NAMESPACE).metadata.labels["preview-envs.dev/sha"] == SHA_2
    live_images = {
        c.image
        for rs in cluster.apps.list_namespaced_replica_set(NAMESPACE).items
        if rs.status.replicas
        for c in rs.spec.template.spec.containers
    }
    assert live_images == {IMAGE_2}, "the old digest no longer runs"

    pr = ("--repo", "acme/shop", "--pr", "42", "--json")
    code, out, err = previewctl(cluster, state, "status", *pr)
    assert code == 0, err
    history = json.loads(out)["operations"]
    assert [(o["kind"], o["result"], o["head_sha"]) for o in history] == [
        ("up", "succeeded", SHA_2),
        ("up", "succeeded", SHA_1),
    ]

    # Drift: someone scales the app by hand; refresh records what the cluster has.
    cluster.apps.patch_namespaced_deployment_scale("app", NAMESPACE, {"spec": {"replicas": 0}})
    code, out, err = previewctl(cluster, state, "refresh", *pr)
    assert code == 0, err
    code, out, err = up(cluster, state, SHA_2, IMAGE_2)
    assert code == 0, err
    assert cluster.apps.read_namespaced_deployment("app", NAMESPACE).spec.replicas == 1

    # Close: everything goes, nothing is left Terminating, the stack is removed.
    started = time.monotonic()
    code, out, err = previewctl(cluster, state, "down", *pr)
    assert code == 0, err
    print(f"down: {time.monotonic() - started:.1f}s")
    assert json.loads(out)["status"] == "destroyed"
    with pytest.raises(ApiException) as gone:
        cluster.core.read_namespace(NAMESPACE)
    assert gone.value.status == 404
    assert not stack_file(state, NAMESPACE).exists()
