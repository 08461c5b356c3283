"""`previewctl up / status / list / down` through the real engine.

No cluster runs in this suite (the end-to-end suite brings one), so `up`
here targets an API server that refuses connections: the real engine and
provider fail, and the lifecycle must record that honestly and still
destroy cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.conftest import IMAGE, REPO_ROOT, SHA, Run

pytestmark = pytest.mark.engine
MINIMAL = str(REPO_ROOT / "examples" / "minimal.yaml")


def up(previewctl: Run, kubeconfig: Path, *extra: str) -> tuple[int, str, str]:
    result = previewctl(
        "up",
        "--repo",
        "acme/shop",
        "--pr",
        "7",
        "--branch",
        "feature/x",
        "--sha",
        SHA,
        "--image",
        IMAGE,
        "--spec",
        MINIMAL,
        "--kubeconfig",
        str(kubeconfig),
        "--actor",
        "alice",
        *extra,
    )
    return result.code, result.stdout, result.stderr


def test_failed_up_is_reported_journalled_and_destroyable(
    previewctl: Run, unreachable_kubeconfig: Path
) -> None:
    code, _, stderr = up(previewctl, unreachable_kubeconfig)
    assert code == 1
    assert "cluster is unreachable" in stderr

    status = previewctl("status", "--repo", "acme/shop", "--pr", "7", "--json")
    assert status.code == 0
    document = json.loads(status.stdout)
    assert document["status"] == "failed"
    assert document["namespace"] == "pr-7-feature-x--" + document["namespace"].rsplit("--", 1)[1]
    assert "cluster is unreachable" in document["last_error"]
    [operation] = document["operations"]
    assert (operation["kind"], operation["result"], operation["actor"]) == ("up", "failed", "alice")
    assert operation["head_sha"] == SHA
    assert operation["image"] == IMAGE

    down = previewctl("down", "--repo", "acme/shop", "--pr", "7", "--json")
    assert down.code == 0, down.stderr
    assert json.loads(down.stdout)["status"] == "destroyed"

    listed = previewctl("list", "--json")
    assert json.loads(listed.stdout) == []
    everything = json.loads(previewctl("list", "--all", "--json").stdout)
    assert [e["status"] for e in everything] == ["destroyed"]

    again = previewctl("down", "--repo", "acme/shop", "--pr", "7")
    assert again.code == 0, "down is idempotent"


def test_up_with_a_tag_instead_of_a_digest_is_refused_before_anything_runs(
    previewctl: Run, tmp_path: Path, unreachable_kubeconfig: Path
) -> None:
    result = previewctl(
        "up",
        "--repo",
        "acme/shop",
        "--pr",
        "7",
        "--branch",
        "x",
        "--sha",
        SHA,
        "--image",
        "ghcr.io/acme/shop:latest",
        "--spec",
        MINIMAL,
        "--kubeconfig",
        str(unreachable_kubeconfig),
    )
    assert result.code == 2
    assert "not pinned by digest" in result.stderr
    assert not (tmp_path / "state" / "pulumi").exists()


def test_image_from_another_repository_is_refused(
    previewctl: Run, unreachable_kubeconfig: Path
) -> None:
    result = previewctl(
        "up",
        "--repo",
        "acme/shop",
        "--pr",
        "7",
        "--branch",
        "x",
        "--sha",
        SHA,
        "--image",
        "docker.io/evil/miner@sha256:" + "0" * 64,
        "--spec",
        MINIMAL,
        "--kubeconfig",
        str(unreachable_kubeconfig),
    )
    assert result.code == 2
    assert "differs from the spec's image.repository" in result.stderr


def test_missing_pulumi_cli_says_how_to_install_and_leaves_nothing(
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
        MINIMAL,
        "--out",
        str(tmp_path / "o"),
        env={"PREVIEW_PULUMI_ROOT": str(tmp_path / "no-such-pulumi")},
    )
    assert result.code == 1
    assert "Pulumi CLI v3.259.0 not found" in result.stderr
    assert "scripts/toolchain" in result.stderr
    assert "PulumiCommand.install" in result.stderr
    assert not (tmp_path / "o").exists()
    assert not (tmp_path / "state" / "pulumi").exists()


def test_down_of_unknown_environment(previewctl: Run) -> None:
    result = previewctl("down", "--repo", "acme/shop", "--pr", "99")
    assert result.code == 1
    assert "no environment for acme/shop#99" in result.stderr


def test_usage_errors_exit_2(previewctl: Run) -> None:
    assert previewctl("up", "--repo", "not a repo", "--pr", "1").code == 2
    assert previewctl("status", "--repo", "acme/shop", "--pr", "0").code == 2
    bad_sha = previewctl(
        "up", "--repo", "acme/shop", "--pr", "1", "--branch", "x", "--sha", "abc", "--image", IMAGE
    )
    assert bad_sha.code == 2
    assert "40-character" in bad_sha.stderr
