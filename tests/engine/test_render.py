"""`previewctl render`: the real engine and provider write valid manifests, no cluster."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.engine.conftest import IMAGE, REPO_ROOT, SHA, Run

pytestmark = pytest.mark.engine
EXAMPLES = REPO_ROOT / "examples"


def render(
    previewctl: Run, spec: Path, out: Path, branch: str = "feature/login"
) -> dict[str, object]:
    result = previewctl(
        "render",
        "--repo",
        "acme/shop",
        "--pr",
        "42",
        "--branch",
        branch,
        "--sha",
        SHA,
        "--image",
        IMAGE,
        "--spec",
        str(spec),
        "--out",
        str(out),
        "--json",
        env={"SHOP_PREVIEW_STRIPE_TEST_KEY": "sk_test_from_env"},
    )
    assert result.code == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def manifests(out: Path) -> dict[str, dict[str, object]]:
    found = {}
    for path in sorted(out.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


@pytest.mark.parametrize("spec", ["minimal.yaml", "full.yaml"])
def test_rendered_manifests_pass_kubernetes_schema_validation(
    previewctl: Run, tmp_path: Path, spec: str
) -> None:
    out = tmp_path / "out"
    document = render(previewctl, EXAMPLES / spec, out)
    rendered = manifests(out)
    assert len(document["files"]) == len(rendered) >= 7  # type: ignore[arg-type]
    for key, manifest in rendered.items():
        try:
            kubernetes_validate.validate(manifest, "1.33.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key}: {exc}")


def test_render_deploys_the_promoted_digest_into_the_derived_namespace(
    previewctl: Run, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    document = render(previewctl, EXAMPLES / "full.yaml", out, branch="Feature/Login")
    namespace = document["namespace"]
    assert isinstance(namespace, str)
    assert namespace.startswith("shop-pr-42-feature-login--")
    rendered = manifests(out)
    container = rendered["Deployment/app"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["image"] == IMAGE
    assert rendered[f"Namespace/{namespace}"]["metadata"]["labels"]["preview-envs.dev/sha"] == SHA  # type: ignore[index]
    # The provider writes stringData as base64 `data`, as the API server would store it.
    data = rendered["Secret/app-secrets"]["data"]
    assert data == {"STRIPE_KEY": base64.b64encode(b"sk_test_from_env").decode()}
    assert document["url"] == f"https://{namespace}.preview.acme.dev"


def test_render_leaves_no_state_behind(previewctl: Run, tmp_path: Path) -> None:
    render(previewctl, EXAMPLES / "minimal.yaml", tmp_path / "out")
    assert not (tmp_path / "state" / "pulumi").exists()


def test_render_with_missing_secret_value_is_a_config_error(
    previewctl: Run, tmp_path: Path
) -> None:
    result = previewctl(
        "render",
        "--repo",
        "acme/shop",
        "--pr",
        "1",
        "--branch",
        "x",
        "--sha",
        SHA,
        "--image",
        IMAGE,
        "--spec",
        str(EXAMPLES / "full.yaml"),
        "--out",
        str(tmp_path / "o"),
    )
    assert result.code == 2
    assert "SHOP_PREVIEW_STRIPE_TEST_KEY" in result.stderr
