"""Spec + pull request → stack input: hosts, images, secrets, database."""

from __future__ import annotations

import pytest

from envs.config.spec_loading import parse_spec
from envs.core.errors import ConfigError
from envs.core.naming import derive
from envs.environments.images import PromotedImage
from envs.environments.stack_plan import plan_stack, resolve_secret_env

SPEC = parse_spec(
    """\
version: 1
image: {repository: ghcr.io/acme/shop}
url:
  host_template: "{name}.{repo}.preview.acme.dev"
  tls: {enabled: true, secret_name: wildcard-tls}
app:
  secret_env: {API_KEY: {from_env: SHOP_PREVIEW_API_KEY}}
database: {extensions: [pgcrypto], postgres_version: "16"}
""",
    "spec.yaml",
)
IMAGE = PromotedImage.parse("ghcr.io/acme/shop@sha256:" + "c" * 64)


def plan(**environ: str) -> object:
    names = derive("acme/Shop.Web", 42, "feature/login")
    return plan_stack(SPEC, "acme/Shop.Web", 42, names, IMAGE, resolve_secret_env(SPEC, environ))


def test_host_uses_the_derived_name_and_a_dns_safe_repo() -> None:
    stack = plan(SHOP_PREVIEW_API_KEY="k")
    assert stack.ingress.host.endswith(".shop-web.preview.acme.dev")  # type: ignore[attr-defined]
    assert stack.url.startswith("https://pr-42-feature-login--")  # type: ignore[attr-defined]


def test_secret_values_come_from_the_provisioner_environment() -> None:
    stack = plan(SHOP_PREVIEW_API_KEY="from-env")
    assert dict(stack.app.secret_env) == {"API_KEY": "from-env"}  # type: ignore[attr-defined]


def test_missing_secret_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SHOP_PREVIEW_API_KEY"):
        plan()


def test_database_follows_the_spec() -> None:
    stack = plan(SHOP_PREVIEW_API_KEY="k")
    assert stack.database.image == "postgres:16"  # type: ignore[attr-defined]
    assert stack.database.extensions == ("pgcrypto",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "reference",
    [
        "ghcr.io/acme/shop:latest",
        "ghcr.io/acme/shop@sha256:short",
        "ghcr.io/acme/shop@sha512:" + "a" * 64,
        "",
        "ghcr.io/acme/shop@sha256:" + "A" * 64,
    ],
)
def test_only_digest_pinned_images_are_accepted(reference: str) -> None:
    with pytest.raises(ConfigError, match="pinned by digest"):
        PromotedImage.parse(reference)


def test_tag_before_digest_is_dropped() -> None:
    image = PromotedImage.parse("ghcr.io/acme/shop:sha-1a2b3c4@sha256:" + "d" * 64)
    assert image.reference == "ghcr.io/acme/shop@sha256:" + "d" * 64
    assert image.short == "d" * 12


def test_registry_with_port_is_kept() -> None:
    image = PromotedImage.parse(
        "registry.local:5000/acme/shop@sha256:" + "e" * 64, "registry.local:5000/acme/shop"
    )
    assert image.repository == "registry.local:5000/acme/shop"
