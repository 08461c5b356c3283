"""The examples users copy (CronJob, Actions workflow) are valid as shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stacks.spec import ENVIRONMENT_ROLE

ROOT = Path(__file__).resolve().parents[2]


def _documents(name: str) -> list[dict[str, Any]]:
    path = ROOT / ".github" / "examples" / name
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_shipped_kubernetes_manifests_are_schema_valid() -> None:
    import kubernetes_validate

    cronjob, rbac = _documents("kubernetes-cronjob.yaml"), _documents("kubernetes-rbac.yaml")
    assert {d["kind"] for d in cronjob} == {"CronJob"}
    for document in cronjob + rbac:
        kubernetes_validate.validate(document, "1.33.0", strict=True)


def test_the_shipped_rbac_grants_no_secret_and_no_pod_creation_cluster_wide() -> None:
    """Secrets and workloads only through the role each preview binds in its own namespace."""
    rbac = {(d["kind"], d["metadata"]["name"]): d for d in _documents("kubernetes-rbac.yaml")}
    cluster_wide = rbac[("ClusterRole", "preview-envs-provisioner")]["rules"]
    granted = {
        (g, r) for rule in cluster_wide for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert granted == {
        ("", "namespaces"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterroles"),
    }
    (bind,) = [r for r in cluster_wide if r["resources"] == ["clusterroles"]]
    assert bind["verbs"] == ["bind"]
    assert bind["resourceNames"] == [ENVIRONMENT_ROLE], "it can grant that one role only"
    environment = rbac[("ClusterRole", ENVIRONMENT_ROLE)]["rules"]
    pods = [r for r in environment if "pods" in r["resources"]]
    assert all("create" not in r["verbs"] for r in pods), "pods come from its Deployments only"
    assert ("ClusterRoleBinding", ENVIRONMENT_ROLE) not in rbac, "bound per preview, by the stack"


def test_cleanup_workflow_example_runs_gc_on_a_schedule() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "examples" / "cleanup-cron.yml").read_text())
    assert workflow[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["gc"]["steps"]
    assert any("previewctl gc" in step.get("run", "") for step in steps)
