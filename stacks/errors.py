"""The engine's failures, importable without Pulumi.

Everything that only needs to catch them (the lifecycle, the cleanup, the
service's handlers, and so every ``previewctl`` command) imports this module
instead of :mod:`stacks.engine`, whose Pulumi SDK takes a second to import:
``previewctl --help`` and ``config validate`` should not wait for it.
"""

from __future__ import annotations


class EngineError(Exception):
    """A Pulumi operation failed; the message carries the engine's own explanation."""


class StackLocked(EngineError):
    """Another update holds the stack (a crashed run leaves this until cancelled)."""


class RolloutNeverSucceeds(EngineError):
    """The new version cannot roll out as it is: the controller gave up, or its pods never start.

    The same image would fail the same way (a root image under ``restricted``,
    a digest the registry lacks, a crash loop, the progress deadline): retrying
    costs a worker for minutes and says nothing new. A new push is the way on.
    """


class ClusterUnreachable(EngineError):
    """No usable kubeconfig or context: the message names what was tried and the fix."""
