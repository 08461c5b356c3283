"""The BranchEnvironment resource graph, under Pulumi's own mocks.

Mocks stand in for the Kubernetes API here (unit tests); the engine tests
run the same component through the real engine and provider.
Every object is validated against the Kubernetes 1.33 OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pulumi
import pytest

from stacks.branch_environment import BranchEnvironment
from stacks.spec import StackSpec
from tests.stacks.fixtures import FULL, IMAGE, MINIMAL

KUBERNETES_VERSION = "1.33.0"
# Pulumi's wire marker for a secret value ("special signature" key).
SECRET_SIG = "4dabf18193072939515e22adb298388d"


def unwrap(value: Any) -> Any:
    """Secrets reach mocks wrapped in a marker object; Kubernetes sees plain values."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture
def mocks() -> RecordingMocks:
    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, preview=False)
    return recorder


def build(spec: StackSpec, mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    """Run the component under mocks; return manifests keyed by Kind/name."""

    @pulumi.runtime.test  # type: ignore[misc]
    def run() -> pulumi.Output[Any]:
        env = BranchEnvironment("env", spec, db_password=pulumi.Output.secret("pw-123"))
        return pulumi.Output.all(env.url, env.namespace)

    run()
    manifests = {}
    for args in mocks.created:
        if args.typ.startswith("kubernetes:"):
            manifest = unwrap(dict(args.inputs))
            manifests[f"{manifest['kind']}/{manifest['metadata']['name']}"] = manifest
    return manifests


@pytest.mark.parametrize("spec", [MINIMAL, FULL], ids=["minimal", "full"])
def test_every_object_is_valid_for_the_kubernetes_schema(
    spec: StackSpec, mocks: RecordingMocks
) -> None:
    manifests = build(spec, mocks)
    assert manifests
    for key, manifest in manifests.items():
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover - message on failure
            pytest.fail(f"{key}: {exc}")


def test_minimal_graph(mocks: RecordingMocks) -> None:
    kinds = sorted(build(MINIMAL, mocks))
    assert kinds == [
        "Deployment/app",
        "Ingress/app",
        "LimitRange/preview-limits",
        "Namespace/pr-42-feature-login",
        "NetworkPolicy/default-deny-ingress",
        "ResourceQuota/preview-quota",
        "Service/app",
    ]


def test_full_graph_adds_database_and_secrets(mocks: RecordingMocks) -> None:
    kinds = set(build(FULL, mocks))
    assert {
        "StatefulSet/postgres",
        "Service/postgres",
        "Secret/db-credentials",
        "Secret/app-secrets",
        "ConfigMap/postgres-init",
    } <= kinds


def test_everything_lives_in_the_environment_namespace_with_its_labels(
    mocks: RecordingMocks,
) -> None:
    for key, manifest in build(FULL, mocks).items():
        meta = manifest["metadata"]
        if not key.startswith("Namespace/"):
            assert meta["namespace"] == FULL.namespace, key
        for label, value in FULL.labels.items():
            assert meta["labels"][label] == value, key


def test_namespace_carries_repo_pr_and_sha_labels(mocks: RecordingMocks) -> None:
    ns = build(FULL, mocks)[f"Namespace/{FULL.namespace}"]
    assert ns["metadata"]["labels"]["preview-envs.dev/pr"] == "42"
    assert ns["metadata"]["labels"]["preview-envs.dev/sha"] == "1a2b3c4d" * 5
    assert ns["metadata"]["annotations"]["preview-envs.dev/repository"] == "acme/shop"


def test_app_runs_the_promoted_image_by_digest_with_database_url(mocks: RecordingMocks) -> None:
    deployment = build(FULL, mocks)["Deployment/app"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "db-credentials",
        "key": "url",
    }
    assert env["STRIPE_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "app-secrets",
        "key": "STRIPE_KEY",
    }
    assert env["LOG_LEVEL"]["value"] == "debug"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["limits"] == {"cpu": "250m", "memory": "256Mi"}
    assert deployment["spec"]["replicas"] == 2


def test_the_provisioner_may_reach_only_the_database_port_to_seed(mocks: RecordingMocks) -> None:
    policy = build(FULL, mocks)["NetworkPolicy/allow-seeding"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "postgres"}}
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    selector = rule["from"][0]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": "preview-system"}


def test_a_rollout_that_cannot_finish_fails_at_the_spec_deadline(mocks: RecordingMocks) -> None:
    assert build(FULL, mocks)["Deployment/app"]["spec"]["progressDeadlineSeconds"] == 90


def test_network_policy_denies_all_but_namespace_and_ingress_controller(
    mocks: RecordingMocks,
) -> None:
    policy = build(FULL, mocks)["NetworkPolicy/default-deny-ingress"]["spec"]
    assert policy["podSelector"] == {}
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
    ]


def test_quota_and_limits_follow_the_spec(mocks: RecordingMocks) -> None:
    manifests = build(FULL, mocks)
    hard = manifests["ResourceQuota/preview-quota"]["spec"]["hard"]
    assert hard["limits.cpu"] == "3"
    assert hard["requests.memory"] == "6Gi"
    assert hard["pods"] == "30"
    assert hard["services.loadbalancers"] == "0"
    [limit] = manifests["LimitRange/preview-limits"]["spec"]["limits"]
    assert limit["type"] == "Container"
    assert limit["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert limit["defaultRequest"] == {"cpu": "100m", "memory": "128Mi"}


def test_secret_values_stay_secret_in_pulumi(mocks: RecordingMocks) -> None:
    build(FULL, mocks)
    secrets = {a.name: a.inputs for a in mocks.created if a.typ == "kubernetes:core/v1:Secret"}
    for inputs in secrets.values():
        assert inputs["stringData"].get(SECRET_SIG) or inputs["stringData"]["password"].get(
            SECRET_SIG
        )


def test_database_credentials_are_generated_into_a_secret(mocks: RecordingMocks) -> None:
    manifests = build(FULL, mocks)
    data = manifests["Secret/db-credentials"]["stringData"]
    assert data["password"] == "pw-123"
    assert data["url"] == (
        "postgresql://app:pw-123@postgres.shop-pr-42-feature-login.svc.cluster.local:5432/shop"
    )
    statefulset = manifests["StatefulSet/postgres"]["spec"]
    [container] = statefulset["template"]["spec"]["containers"]
    assert container["image"] == "postgres:16"
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert statefulset["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "2Gi"
    }
    init = manifests["ConfigMap/postgres-init"]["data"]["00-extensions.sql"]
    assert 'CREATE EXTENSION IF NOT EXISTS "citext";' in init


def test_ingress_routes_the_derived_host_with_tls(mocks: RecordingMocks) -> None:
    ingress = build(FULL, mocks)["Ingress/app"]
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["rules"][0]["host"] == FULL.ingress.host
    assert spec["tls"] == [{"hosts": [FULL.ingress.host], "secretName": "app-tls"}]
    issuer = ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    assert issuer == "letsencrypt-staging"


def test_every_object_is_applied_by_one_stable_forced_field_manager(
    mocks: RecordingMocks,
) -> None:
    """So an object a killed update created but never recorded is adopted by the next one."""
    manifests = build(FULL, mocks)
    assert len(manifests) > 10
    for name, manifest in manifests.items():
        annotations = manifest["metadata"]["annotations"]
        assert annotations["pulumi.com/patchFieldManager"] == "preview-envs", name
        assert annotations["pulumi.com/patchForce"] == "true", name


def test_database_needs_a_password(mocks: RecordingMocks) -> None:
    @pulumi.runtime.test  # type: ignore[misc]
    def run() -> None:
        BranchEnvironment("env", FULL, db_password=None)

    with pytest.raises(ValueError, match="password"):
        run()


def test_tag_only_image_is_refused() -> None:
    from stacks.spec import AppStackSpec

    with pytest.raises(ValueError, match="pinned by digest"):
        AppStackSpec(image="ghcr.io/acme/shop:latest")
