"""Resolving a promoted tag to the digest it points at, over the OCI Distribution API.

For repositories whose spec says ``image.promotion: tag``: CI pushes a tag
derived from the commit (``sha-{short_sha}`` by default) and the service pins
the environment to the digest that tag names *at the time CI reported
success*, so a later re-push of the tag never changes a running preview.
One ``HEAD`` of the manifest; registries that want a token (ghcr.io, Docker
Hub, most others) get the standard bearer-token exchange, anonymously or
with ``PREVIEW_REGISTRY_USERNAME`` / ``PREVIEW_REGISTRY_PASSWORD``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import httpx

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class RegistryError(Exception):
    """The registry could not be asked (network, auth, unexpected answer)."""


@dataclass(frozen=True)
class ImageName:
    registry: str  # host[:port] as used in URLs
    path: str  # repository path inside the registry

    @classmethod
    def parse(cls, repository: str) -> ImageName:
        first, _, rest = repository.partition("/")
        if not rest or ("." not in first and ":" not in first and first != "localhost"):
            # Docker Hub's short names: "acme/shop", "nginx".
            path = repository if "/" in repository else f"library/{repository}"
            return cls("registry-1.docker.io", path)
        if first == "docker.io":
            return cls("registry-1.docker.io", rest if "/" in rest else f"library/{rest}")
        return cls(first, rest)

    @property
    def base_url(self) -> str:
        host = self.registry.rsplit(":", 1)[0] if self.registry.count(":") == 1 else self.registry
        scheme = "http" if host in _LOOPBACK else "https"  # plain HTTP only on loopback
        return f"{scheme}://{self.registry}"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def promoted_tag(template: str, sha: str, pr_number: int) -> str:
    """The tag CI pushes for a commit; ``{short_sha}`` is git's default 7 characters."""
    return template.format(sha=sha, short_sha=sha[:7], pr=pr_number)


class RegistryClient:
    def __init__(self, credentials: Credentials | None = None, timeout: float = 15.0) -> None:
        self.credentials = credentials
        self.http = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def digest(self, repository: str, tag: str) -> str | None:
        """The digest ``repository:tag`` names now; None if the tag does not exist (yet)."""
        image = ImageName.parse(repository)
        url = f"{image.base_url}/v2/{image.path}/manifests/{tag}"
        headers = {"Accept": MANIFEST_TYPES}
        try:
            response = self.http.head(url, headers=headers)
            if response.status_code == 401:
                headers["Authorization"] = self._token(response, image)
                response = self.http.head(url, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{image.registry}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(
                f"{image.registry} answered {response.status_code} for {image.path}:{tag}"
            )
        digest = str(response.headers.get("docker-content-digest", ""))
        if not _DIGEST.match(digest):
            raise RegistryError(f"{image.registry} sent no usable digest for {image.path}:{tag}")
        return digest

    def _token(self, challenge: httpx.Response, image: ImageName) -> str:
        header = challenge.headers.get("www-authenticate", "")
        scheme, _, params = header.partition(" ")
        if scheme.lower() == "basic":
            if self.credentials is None:
                raise RegistryError(f"{image.registry} needs credentials (PREVIEW_REGISTRY_*)")
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        fields = dict(_CHALLENGE.findall(params))
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise RegistryError(f"{image.registry}: unsupported auth challenge {header[:100]!r}")
        query = {"service": fields.get("service", ""), "scope": f"repository:{image.path}:pull"}
        auth = (
            httpx.BasicAuth(self.credentials.username, self.credentials.password)
            if self.credentials
            else None
        )
        response = self.http.get(fields["realm"], params=query, auth=auth)
        if response.status_code != 200:
            raise RegistryError(f"{image.registry} token service answered {response.status_code}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{image.registry} token service sent no token")
        return f"Bearer {token}"
