"""A real OCI registry (CNCF Distribution, built by ``scripts/cluster registry``) on loopback.

``push`` uploads a tiny image (config blob + one layer) through the
Distribution API, the way ``docker push`` does, and returns the manifest
digest the registry reports.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]


def registry_binary() -> Path:
    built = subprocess.run(
        [str(ROOT / "scripts" / "cluster"), "registry"],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if built.returncode != 0:
        pytest.fail(f"scripts/cluster registry failed:\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT

    def push(self, path: str, tag: str, content: bytes) -> str:
        """Push an image whose single layer is ``content``; the manifest digest."""
        base = f"http://{self.host}/v2/{path}"
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        blobs = [(config, "application/vnd.oci.image.config.v1+json"), (content, "")]
        for blob, _ in blobs:
            started = httpx.post(f"{base}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["location"]
            url = location if location.startswith("http") else f"http://{self.host}{location}"
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            separator = "&" if "?" in url else "?"
            done = httpx.put(f"{url}{separator}digest={digest}", content=blob)
            assert done.status_code == 201, done.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": _descriptor(config, "application/vnd.oci.image.config.v1+json"),
                "layers": [_descriptor(content, "application/vnd.oci.image.layer.v1.tar")],
            }
        ).encode()
        pushed = httpx.put(
            f"{base}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert pushed.status_code == 201, pushed.text
        assert (
            pushed.headers["docker-content-digest"]
            == "sha256:" + hashlib.sha256(manifest).hexdigest()
        )
        return str(pushed.headers["docker-content-digest"])


def _descriptor(blob: bytes, media_type: str) -> dict[str, object]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
    }


@contextmanager
def running_registry() -> Iterator[Registry]:
    binary = registry_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="preview-registry-") as tmp:
        config = Path(tmp) / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: error}\n"
            f"storage: {{filesystem: {{rootdirectory: {tmp}/data}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n"
        )
        log = Path(tmp) / "registry.log"
        with log.open("w") as sink:
            proc = subprocess.Popen([str(binary), "serve", str(config)], stdout=sink, stderr=sink)
        try:

            def up() -> bool:
                assert proc.poll() is None, log.read_text()
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, "the registry to start", timeout=30)
            yield Registry(f"127.0.0.1:{port}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
