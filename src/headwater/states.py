"""Public state types and constructors: `Completed()`, `Failed(message=...)`, ...

Example:
    from headwater.states import Completed, Failed

    @flow
    def check():
        return Completed(message="all good") if ok() else Failed(message="not ok")
"""

from __future__ import annotations

from headwater.core.states import (
    AwaitingRetry,
    Cached,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Late,
    Paused,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateType,
    Suspended,
    TimedOut,
)

__all__ = [
    "AwaitingRetry",
    "Cached",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "Late",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "Suspended",
    "TimedOut",
]
