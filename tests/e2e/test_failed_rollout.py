"""A push whose new version cannot roll out: reported on the PR, the previous version keeps serving.

The new version asks for more CPU than the environment's quota admits, so
its pods are never created; the Deployment's progress deadline (the spec's
``app.rollout_timeout``) fails the update, as a crash-looping image would.
"""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from tests.contract.fake_github import Comment
from tests.contract.service_harness import PR, REPO, SPEC_TEXT, comment, pr_event
from tests.e2e.conftest import Cluster
from tests.e2e.service import SHA_1, Running, namespace_of

pytestmark = pytest.mark.e2e

SHA_2 = "4" * 40
IMAGE_1 = "ghcr.io/codertocat/hello-world@sha256:" + "3e" * 32
IMAGE_2 = "ghcr.io/codertocat/hello-world@sha256:" + "4f" * 32
FAST = SPEC_TEXT + "app: {rollout_timeout: 1m}\n"
TOO_BIG = SPEC_TEXT + (
    "app:\n  rollout_timeout: 1m\n"
    '  resources: {requests: {cpu: "3"}, limits: {cpu: "3"}}\n'  # the quota is 2 CPUs
)


def serving_images(cluster: Cluster, namespace: str) -> set[str]:
    pods = cluster.core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=app")
    return {
        pod.spec.containers[0].image
        for pod in pods.items
        if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    }


def test_a_failed_rollout_is_reported_and_the_previous_version_keeps_serving(
    cluster: Cluster, service: Running
) -> None:
    service.spec_path.write_text(FAST)
    service.deliver("pull_request", pr_event("opened"))
    service.promote(SHA_1, IMAGE_1)
    service.until(lambda: service.states() == [["in_progress", "success"]], "the first version")
    namespace = namespace_of(cluster.core)
    assert serving_images(cluster, namespace) == {IMAGE_1}

    service.spec_path.write_text(TOO_BIG)
    service.deliver("pull_request", pr_event("synchronize", sha=SHA_2))
    service.promote(SHA_2, IMAGE_2)
    service.until(
        lambda: [states[-1:] for states in service.states()] == [["success"], ["failure"]],
        "the failure to be reported",
    )
    sticky = service.sticky()
    assert "**failed**" in sticky
    assert "Last error" in sticky
    assert f"The previous version (commit `{SHA_1[:12]}`) keeps serving" in sticky
    assert serving_images(cluster, namespace) == {IMAGE_1}, "the previous version keeps serving"
    assert service.states()[0][-1] == "success", "the good deployment is not retired"

    # A maintainer removes it from the PR, even with the failed deploy being retried.
    service.fake.comments[21] = Comment(21, REPO, PR, "/preview destroy", "maintainer")
    service.deliver("issue_comment", comment("/preview destroy", "maintainer", comment_id=21))

    def gone() -> bool:
        try:
            cluster.core.read_namespace(namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    service.until(gone, "the namespace to go", timeout=400)
    service.until(lambda: service.fake.comments[21].reactions == ["eyes", "rocket"], "the 🚀")
    service.until(
        lambda: all(states[-1] == "inactive" for states in service.states()),
        "both deployments to be inactive",
    )
