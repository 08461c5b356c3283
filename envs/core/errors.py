"""Error types that carry a message a user can act on, and their exit codes.

The CLI maps these to exit codes in one place (:func:`exit_code`); everything
below it raises, nothing below it calls ``sys.exit``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the operation was attempted and did not succeed
    USAGE = 2  # bad arguments, config or settings: fix the input and retry


class PreviewError(Exception):
    """Base of every error we raise on purpose; its message is for the user.

    ``public`` is what may be shown where the pull request's author reads it
    (a PR comment, a deployment status). It is the message itself unless the
    message holds what the pull request must not learn: anything read from an
    anonymisation source (a value, a count of rows) or the service's own
    infrastructure. The full message goes to the service log and the audit.
    """

    exit_code = ExitCode.FAILED

    def __init__(self, message: str = "", *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = message if public is None else public


class ConfigError(PreviewError):
    """A spec file, settings variable or argument that cannot be used."""

    exit_code = ExitCode.USAGE


class OperationFailed(PreviewError):
    """A lifecycle operation (up, down, render, ...) did not complete."""


class NotFound(PreviewError):
    """The environment, stack or record asked for does not exist."""


def public_text(error: BaseException) -> str:
    """What of ``error`` may be posted on the pull request (see :class:`PreviewError`)."""
    public = getattr(error, "public", None)
    return public if isinstance(public, str) else str(error)


def exit_code(error: BaseException) -> ExitCode:
    """The process exit code for an error that reached the CLI."""
    if isinstance(error, PreviewError):
        return error.exit_code
    return ExitCode.FAILED
