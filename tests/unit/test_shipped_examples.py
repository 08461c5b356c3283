"""The examples users copy (CronJob, Actions workflow) are valid as shipped."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_kubernetes_manifests_are_schema_valid() -> None:
    import kubernetes_validate
    import yaml

    path = ROOT / ".github" / "examples" / "kubernetes-cronjob.yaml"
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert {d["kind"] for d in documents} == {"CronJob", "ClusterRole"}
    for document in documents:
        kubernetes_validate.validate(document, "1.33.0", strict=True)


def test_cleanup_workflow_example_runs_gc_on_a_schedule() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "examples" / "cleanup-cron.yml").read_text())
    assert workflow[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["gc"]["steps"]
    assert any("previewctl gc" in step.get("run", "") for step in steps)
