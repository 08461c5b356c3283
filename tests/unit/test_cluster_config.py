"""A kubeconfig that cannot be used is a sentence naming it and the fix, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.config.settings import Settings
from stacks.cluster import Cluster
from stacks.errors import ClusterUnreachable, EngineError


def test_a_missing_kubeconfig_names_the_file_and_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ClusterUnreachable) as caught:
        Cluster(str(missing))
    assert str(missing) in str(caught.value)
    assert "PREVIEW_KUBECONFIG" in str(caught.value)
    assert isinstance(caught.value, EngineError)  # the lifecycle's failures catch it


def test_a_kubeconfig_given_as_text_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachable) as caught:
        Cluster("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n", "nope")
    assert "the kubeconfig given" in str(caught.value)
    assert "apiVersion" not in str(caught.value)


def test_an_empty_kubeconfig_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVIEW_KUBECONFIG", "")
    monkeypatch.setenv("PREVIEW_KUBE_CONTEXT", "")
    settings = Settings()
    assert settings.kubeconfig is None
    assert settings.kube_context is None
