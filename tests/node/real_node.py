"""Where the real node (``scripts/cluster up --real``) serves, and the settings a
provisioner needs to use it: one place for the tests, the benchmark and the docs
to agree on."""

from __future__ import annotations

import os

NODE_IP = os.environ.get("PREVIEW_NODE_IP", "10.245.255.1")
INGRESS = f"http://{NODE_IP}:{os.environ.get('PREVIEW_INGRESS_PORT', '80')}"
REGISTRY = os.environ.get("PREVIEW_REGISTRY", "127.0.0.1:5001")

# Traefik runs in its own namespace; the worker runs on the host, outside the
# cluster, so it reaches a preview's database through the API (a port-forward).
SETTINGS = {"PREVIEW_INGRESS_NAMESPACE": "traefik", "PREVIEW_DATABASE_ADDRESS": "port-forward"}
