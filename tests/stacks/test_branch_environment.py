"""The BranchEnvironment resource graph, under Pulumi's own mocks.

Mocks stand in for the Kubernetes API here (unit tests); the engine tests
run the same component through the real engine and provider.
Every object is validated against the Kubernetes 1.33 OpenAPI schema.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import kubernetes_validate
import pulumi
import pytest

from stacks.branch_environment import BranchEnvironment
from stacks.spec import ENVIRONMENT_ROLE, EgressRule, IsolationSpec, StackSpec
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
        "NetworkPolicy/allow-dns-and-namespace",
        "NetworkPolicy/allow-ingress-controller",
        "NetworkPolicy/default-deny",
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
        "RoleBinding/preview-envs-provisioner",
    } <= kinds


def test_the_provisioner_gets_the_environment_role_in_this_namespace_only(
    mocks: RecordingMocks,
) -> None:
    binding = build(FULL, mocks)["RoleBinding/preview-envs-provisioner"]
    assert binding["metadata"]["namespace"] == FULL.namespace
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": ENVIRONMENT_ROLE,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "preview-envs", "namespace": "preview-system"}
    ]
    fresh = RecordingMocks()
    pulumi.runtime.set_mocks(fresh, preview=False)
    assert "RoleBinding/preview-envs-provisioner" not in build(MINIMAL, fresh), (
        "without a ServiceAccount (a person's kubeconfig) nothing is bound"
    )


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
    deployment = build(FULL, mocks)["Deployment/app"]
    assert deployment["spec"]["progressDeadlineSeconds"] == 90
    # The engine's own wait (stacks.rollout) reads the pods; the provider's would not stop early.
    assert deployment["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    # Nor may the provider's wait for the Service's endpoints hold the update: they exist
    # only once a pod is ready, which a crash-looping version never is.
    service = build(FULL, mocks)["Service/app"]
    assert service["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_an_old_version_drains_before_it_stops(mocks: RecordingMocks) -> None:
    (container,) = build(FULL, mocks)["Deployment/app"]["spec"]["template"]["spec"]["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}


def test_every_connection_is_denied_both_ways_unless_a_policy_opens_it(
    mocks: RecordingMocks,
) -> None:
    manifests = build(FULL, mocks)
    deny = manifests["NetworkPolicy/default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    policies = {k: m["spec"] for k, m in manifests.items() if k.startswith("NetworkPolicy/")}
    assert set(policies) == {
        "NetworkPolicy/default-deny",
        "NetworkPolicy/allow-dns-and-namespace",
        "NetworkPolicy/allow-ingress-controller",
        "NetworkPolicy/allow-app-to-database",
        "NetworkPolicy/allow-seeding",
    }, "no allow-list in the spec: no egress beyond DNS and the namespace"


def test_the_ingress_controller_reaches_only_the_apps_port(mocks: RecordingMocks) -> None:
    policy = build(FULL, mocks)["NetworkPolicy/allow-ingress-controller"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "app"}}
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    assert rule["ports"] == [{"port": FULL.app.port, "protocol": "TCP"}]


def test_postgres_takes_connections_from_the_app_and_the_seeder_only(
    mocks: RecordingMocks,
) -> None:
    manifests = build(FULL, mocks)
    policy = manifests["NetworkPolicy/allow-app-to-database"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "postgres"}}
    [rule] = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}}}]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    opened = [
        m["spec"]["podSelector"]
        for m in manifests.values()
        if m["kind"] == "NetworkPolicy" and m["spec"].get("ingress")
    ]
    assert {"matchLabels": {"app.kubernetes.io/name": "postgres"}} in opened
    assert {} not in opened, "no policy opens every pod to anything"


def test_egress_is_dns_and_the_namespace_unless_the_spec_lists_more(mocks: RecordingMocks) -> None:
    policy = build(FULL, mocks)["NetworkPolicy/allow-dns-and-namespace"]["spec"]
    assert policy["podSelector"] == {}
    assert policy["policyTypes"] == ["Egress"]
    dns, own = policy["egress"]
    assert dns["to"] == [{"namespaceSelector": {}}]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert own == {"to": [{"podSelector": {}}]}


def test_an_egress_allow_list_never_opens_metadata_or_the_api_server(
    mocks: RecordingMocks,
) -> None:
    isolation = IsolationSpec(
        egress=(EgressRule("0.0.0.0/0", (443,)), EgressRule("10.20.0.0/16")),
        denied=("10.96.0.1/32", "192.168.5.7/32"),
    )
    manifests = build(dataclasses.replace(FULL, isolation=isolation), mocks)
    wide, narrow = manifests["NetworkPolicy/allow-egress-list"]["spec"]["egress"]
    assert wide["to"] == [
        {
            "ipBlock": {
                "cidr": "0.0.0.0/0",
                "except": ["169.254.169.254/32", "10.96.0.1/32", "192.168.5.7/32"],
            }
        }
    ]
    assert wide["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert narrow["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "except only what it holds"
    assert "ports" not in narrow

    allowed = IsolationSpec(
        egress=(EgressRule("0.0.0.0/0"),),
        denied=("10.96.0.1/32",),
        allow_cloud_metadata=True,
        allow_kubernetes_api=True,
    )
    [rule] = build(dataclasses.replace(FULL, isolation=allowed), mocks)[
        "NetworkPolicy/allow-egress-list"
    ]["spec"]["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "only where the spec says so"


def test_the_namespace_enforces_pod_security_restricted_by_default(
    mocks: RecordingMocks,
) -> None:
    labels = build(FULL, mocks)[f"Namespace/{FULL.namespace}"]["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest"
    baseline = dataclasses.replace(FULL, isolation=IsolationSpec(pod_security="baseline"))
    labels = build(baseline, mocks)[f"Namespace/{FULL.namespace}"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    with pytest.raises(ValueError, match="never privileged"):
        IsolationSpec(pod_security="privileged")


def test_every_pod_runs_as_restricted_asks(mocks: RecordingMocks) -> None:
    """What Pod Security `restricted` checks, field by field (the API server checks it too)."""
    manifests = build(FULL, mocks)
    for key in ("Deployment/app", "StatefulSet/postgres"):
        pod = manifests[key]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, key
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, key
        assert pod["automountServiceAccountToken"] is False, key
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, key
            assert context["capabilities"] == {"drop": ["ALL"]}, key
            assert "privileged" not in context, key
    database = manifests["StatefulSet/postgres"]["spec"]["template"]["spec"]
    assert database["securityContext"]["runAsUser"] == 999
    assert database["securityContext"]["fsGroup"] == 999
    [server] = database["containers"]
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    mounted = {m["mountPath"] for m in server["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounted


def test_the_app_starts_once_its_database_answers(mocks: RecordingMocks) -> None:
    """Created with the database, the app's pods wait for it in an init container that
    runs the database's image as its non-root user, read-only, within small limits."""
    pod = build(FULL, mocks)["Deployment/app"]["spec"]["template"]["spec"]
    [wait] = pod["initContainers"]
    assert FULL.database is not None
    assert wait["image"] == FULL.database.image == f"postgres:{FULL.database.postgres_version}"
    assert "pg_isready" in wait["command"][-1]
    assert "-h postgres -p 5432" in wait["command"][-1]
    assert wait["securityContext"]["runAsUser"] == 999
    assert wait["securityContext"]["readOnlyRootFilesystem"] is True
    assert wait["resources"]["limits"] == {"cpu": "100m", "memory": "32Mi"}
    without = build(dataclasses.replace(FULL, database=None), mocks)
    assert "initContainers" not in without["Deployment/app"]["spec"]["template"]["spec"]


def test_baseline_lets_an_image_run_as_root_but_never_escalate(mocks: RecordingMocks) -> None:
    baseline = dataclasses.replace(FULL, isolation=IsolationSpec(pod_security="baseline"))
    pod = build(baseline, mocks)["Deployment/app"]["spec"]["template"]["spec"]
    assert "runAsNonRoot" not in pod["securityContext"]
    [container] = pod["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}


def test_quota_and_limits_follow_the_spec(mocks: RecordingMocks) -> None:
    manifests = build(FULL, mocks)
    hard = manifests["ResourceQuota/preview-quota"]["spec"]["hard"]
    assert hard["limits.cpu"] == "3"
    assert hard["requests.memory"] == "6Gi"
    assert hard["pods"] == "30"
    assert hard["services.loadbalancers"] == "0"
    assert hard["requests.ephemeral-storage"] == hard["limits.ephemeral-storage"] == "4Gi"
    [limit] = manifests["LimitRange/preview-limits"]["spec"]["limits"]
    assert limit["type"] == "Container"
    assert limit["default"] == {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "1Gi"}
    assert limit["defaultRequest"] == {
        "cpu": "100m",
        "memory": "128Mi",
        "ephemeral-storage": "64Mi",
    }


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
    # Ready once the server listens on TCP: the entrypoint's setup server never does.
    assert container["readinessProbe"]["tcpSocket"]["port"] == 5432
    assert {"name": "POSTGRES_INITDB_ARGS", "value": "--no-sync"} in container["env"]
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


def test_a_new_commit_leaves_the_database_statefulset_as_it_was(mocks: RecordingMocks) -> None:
    """Its pod template and claim template carry no per-commit label: a push must not
    restart PostgreSQL (the app would lose its connections) nor touch the immutable
    claim templates."""
    before = build(FULL, mocks)["StatefulSet/postgres"]["spec"]
    pushed = dataclasses.replace(FULL, labels={**FULL.labels, "preview-envs.dev/sha": "9f" * 20})
    assert build(pushed, mocks)["StatefulSet/postgres"]["spec"] == before
