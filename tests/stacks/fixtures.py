"""Stack specs used by the stack tests: a minimal and a full environment."""

from __future__ import annotations

from stacks.spec import (
    Amounts,
    AppStackSpec,
    DatabaseStackSpec,
    IngressStackSpec,
    QuotaStackSpec,
    ResourceSpec,
    StackSpec,
)

IMAGE = "ghcr.io/acme/shop@sha256:" + "ab" * 32
LABELS = {
    "app.kubernetes.io/managed-by": "preview-envs",
    "preview-envs.dev/repository": "acme.shop",
    "preview-envs.dev/pr": "42",
    "preview-envs.dev/sha": "1a2b3c4d" * 5,
}

MINIMAL = StackSpec(
    namespace="pr-42-feature-login",
    labels=LABELS,
    app=AppStackSpec(image=IMAGE),
    ingress=IngressStackSpec(host="pr-42-feature-login.preview.acme.dev"),
    database=None,
)

FULL = StackSpec(
    namespace="shop-pr-42-feature-login",
    labels=LABELS,
    annotations={"preview-envs.dev/repository": "acme/shop"},
    app=AppStackSpec(
        image=IMAGE,
        port=3000,
        health_path="/ready",
        replicas=2,
        env={"LOG_LEVEL": "debug"},
        secret_env={"STRIPE_KEY": "sk_test_123"},
        resources=ResourceSpec(Amounts("50m", "64Mi"), Amounts("250m", "256Mi")),
        command=("/app/server",),
        args=("--port", "3000"),
        rollout_timeout_s=90,
    ),
    ingress=IngressStackSpec(
        host="shop-pr-42-feature-login.preview.acme.dev",
        ingress_class="nginx",
        cluster_issuer="letsencrypt-staging",
        controller_namespace="ingress-nginx",
    ),
    database=DatabaseStackSpec(
        seeder_namespace="preview-system",
        postgres_version="16",
        storage="2Gi",
        database="shop",
        extensions=("pgcrypto", "citext"),
    ),
    quota=QuotaStackSpec(cpu="3", memory="6Gi", pods=30, storage="20Gi"),
    provisioner="preview-system/preview-envs",
)
