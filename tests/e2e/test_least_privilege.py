"""The provisioner as the shipped least-privilege ServiceAccount, against the real API server.

`.github/examples/kubernetes-rbac.yaml` is applied as an administrator would
apply it; `previewctl up` and `down` then run with a token of that
ServiceAccount only. A whole preview must work, and what the RBAC and its
admission policy promise to refuse must be refused by the API server itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, utils
from kubernetes.client.rest import ApiException

from stacks.spec import ENVIRONMENT_ROLE
from tests.cli_runner import REPO_ROOT, run_previewctl, toolchain_env
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

RBAC = REPO_ROOT / ".github" / "examples" / "kubernetes-rbac.yaml"
ACCOUNT = "preview-envs/preview-envs"
NAMESPACE = "pr-77-least-privilege"
IMAGE = "ghcr.io/acme/shop@sha256:" + "7c" * 32


def _token_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """The cluster's kubeconfig with its user replaced by a token of the ServiceAccount."""
    request = {"spec": {"expirationSeconds": 3600}}
    token = cluster.core.create_namespaced_service_account_token(
        "preview-envs", "preview-envs", request
    ).status.token
    admin: dict[str, Any] = yaml.safe_load(cluster.kubeconfig.read_text())
    context = admin["contexts"][0]
    admin["users"] = [{"name": "provisioner", "user": {"token": token}}]
    admin["contexts"] = [
        {"name": "provisioner", "context": context["context"] | {"user": "provisioner"}}
    ]
    admin["current-context"] = "provisioner"
    path.write_text(yaml.safe_dump(admin))
    return path


def _as(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _previewctl(kubeconfig: Path, state: Path, *args: str) -> tuple[int, str, str]:
    env = toolchain_env() | {
        "PREVIEW_STATE_DIR": str(state),
        "PREVIEW_KUBECONFIG": str(kubeconfig),
        "PREVIEW_SERVICE_ACCOUNT": ACCOUNT,
    }
    result = run_previewctl(args, state.parent, env, timeout=900)
    return result.code, result.stdout, result.stderr


def test_a_whole_preview_runs_as_the_least_privilege_service_account(
    cluster: Cluster, tmp_path: Path
) -> None:
    admin = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    utils.create_from_yaml(admin, str(RBAC))
    kubeconfig = _token_kubeconfig(cluster, tmp_path / "provisioner.yaml")
    provisioner = _as(kubeconfig)
    state = tmp_path / "state"

    code, out, err = _previewctl(
        kubeconfig, state, "up", "--repo", "acme/shop", "--pr", "77", "--branch",
        "least-privilege", "--sha", "7" * 40, "--image", IMAGE,
        "--spec", str(REPO_ROOT / "examples" / "minimal.yaml"), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["status"] == "ready"
    binding = client.RbacAuthorizationV1Api(admin).read_namespaced_role_binding(
        "preview-envs-provisioner", NAMESPACE
    )
    assert binding.role_ref.name == ENVIRONMENT_ROLE

    # Secrets: only inside preview namespaces.
    cluster.core.create_namespaced_secret(
        "default", {"metadata": {"name": "production-credentials"}, "stringData": {"k": "v"}}
    )
    with pytest.raises(ApiException) as secret:
        provisioner.read_namespaced_secret("production-credentials", "default")
    assert secret.value.status == 403
    provisioner.read_namespaced_secret("db-credentials", NAMESPACE)  # its own: allowed

    # Namespaces: RBAC cannot select by label; the admission policy does.
    cluster.core.create_namespace({"metadata": {"name": "payments"}})
    with pytest.raises(ApiException) as foreign:
        provisioner.delete_namespace("payments")
    assert foreign.value.status in (403, 422)
    assert "only namespaces labelled" in str(foreign.value.body)
    with pytest.raises(ApiException) as unlabelled:
        provisioner.create_namespace({"metadata": {"name": "sneaky"}})
    assert "only namespaces labelled" in str(unlabelled.value.body)

    # It can grant the environment role, and no other.
    escalate = {
        "metadata": {"name": "escalate"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "preview-envs",
                      "namespace": "preview-envs"}],
    }  # fmt: skip
    rbac_as_provisioner = client.RbacAuthorizationV1Api(
        config.new_client_from_config(config_file=str(kubeconfig))
    )
    with pytest.raises(ApiException) as escalated:
        rbac_as_provisioner.create_namespaced_role_binding(NAMESPACE, escalate)
    assert escalated.value.status == 403

    code, out, err = _previewctl(kubeconfig, state, "down", "--repo", "acme/shop", "--pr", "77")
    assert code == 0, err
    with pytest.raises(ApiException) as gone:
        cluster.core.read_namespace(NAMESPACE)
    assert gone.value.status == 404
