"""The error root and the run-outcome errors `State.result()` raises.

They live in `core/` because states raise them and `core/` imports nothing
else from Headwater; `headwater.exceptions` re-exports them.
"""

from __future__ import annotations


class HeadwaterError(Exception):
    """Root of every error Headwater raises."""


class FailedRun(HeadwaterError):
    """The result of a Failed run was requested and the state carries no exception."""


class CrashedRun(HeadwaterError):
    """The result of a Crashed run was requested."""


class CancelledRun(HeadwaterError):
    """The result of a Cancelled run was requested."""


class UnfinishedRun(HeadwaterError):
    """The run has no final state yet, so it has no result."""
