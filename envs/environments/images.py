"""The promoted image: exactly what CI built for a head SHA, pinned by digest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from envs.core.errors import ConfigError

_REFERENCE = re.compile(
    r"^(?P<repository>[a-z0-9][a-z0-9._/:-]*?)(?::[\w][\w.-]{0,127})?@(?P<digest>sha256:[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class PromotedImage:
    repository: str
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"

    @property
    def short(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]

    @classmethod
    def parse(cls, reference: str, expected_repository: str | None = None) -> PromotedImage:
        """``repo@sha256:...`` (a tag before the digest is allowed and dropped).

        A moving tag alone is refused: the environment must run the bytes CI
        tested, and a tag can be re-pushed between promotion and deploy.
        """
        match = _REFERENCE.match(reference.strip())
        if not match:
            raise ConfigError(
                f"image {reference!r} is not pinned by digest; pass "
                "'<repository>@sha256:<64 hex digits>' as promoted by CI"
            )
        image = cls(match["repository"], match["digest"])
        if expected_repository is not None and image.repository != expected_repository:
            raise ConfigError(
                f"image repository {image.repository!r} differs from the spec's image.repository "
                f"{expected_repository!r}; previews only run images of their own repository"
            )
        return image
