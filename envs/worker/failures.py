"""How a job fails: worth retrying or not; the full text for the log, the public one for the PR."""

from __future__ import annotations

from envs.core.errors import public_text


class JobFailed(Exception):
    """A job's failure: the full text for the log, ``public`` for the PR (see PreviewError)."""

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = message if public is None else public

    @classmethod
    def of(cls, error: BaseException, prefix: str = "") -> JobFailed:
        return cls(f"{prefix}{error}", f"{prefix}{public_text(error)}")


class Transient(JobFailed):
    """Worth retrying later (engine hiccup, GitHub outage)."""


class Permanent(JobFailed):
    """Retrying cannot help (bad config, GitHub refused); reported on the PR."""
