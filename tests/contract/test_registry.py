"""Tag → digest resolution against a real OCI registry (CNCF Distribution)."""

from __future__ import annotations

import pytest

from envs.environments.registry import ImageName, RegistryClient, RegistryError, promoted_tag
from tests.registry_server import Registry


def test_a_pushed_tag_resolves_to_the_manifest_digest_and_follows_re_pushes(
    registry: Registry,
) -> None:
    repository = f"{registry.host}/acme/shop"
    with RegistryClient() as client:
        assert client.digest(repository, "sha-1234567") is None  # not pushed yet
        first = registry.push("acme/shop", "sha-1234567", b"layer one")
        assert client.digest(repository, "sha-1234567") == first
        second = registry.push("acme/shop", "sha-1234567", b"layer two")
        assert second != first
        assert client.digest(repository, "sha-1234567") == second


def test_an_unreachable_registry_is_a_clear_error() -> None:
    with RegistryClient(timeout=2) as client, pytest.raises(RegistryError, match=r"127\.0\.0\.1:9"):
        client.digest("127.0.0.1:9/acme/shop", "latest")


def test_image_names_and_tags() -> None:
    assert ImageName.parse("ghcr.io/acme/shop") == ImageName("ghcr.io", "acme/shop")
    assert ImageName.parse("ghcr.io/acme/shop").base_url == "https://ghcr.io"
    assert ImageName.parse("localhost:5000/shop").base_url == "http://localhost:5000"
    assert ImageName.parse("acme/shop") == ImageName("registry-1.docker.io", "acme/shop")
    assert ImageName.parse("docker.io/nginx") == ImageName("registry-1.docker.io", "library/nginx")
    assert promoted_tag("sha-{short_sha}", "abcdef0123" + "0" * 30, 7) == "sha-abcdef0"
    assert promoted_tag("pr-{pr}-{sha}", "a" * 40, 7) == "pr-7-" + "a" * 40
