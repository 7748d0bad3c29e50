"""Run states: the nine state types, named variants and their constructors.

A `State` is a small value: what happened to a run (`type`), a display `name`
("Completed", "Cached", "TimedOut", ...), an optional `message`, when it
happened and the run's data (the return value, or the exception of a failure).
It is deliberately not a pydantic model: the engine creates three of them per
task run, so they must cost nanoseconds, not microseconds.
"""

from __future__ import annotations

import enum
import time
from typing import Any

from headwater.core.errors import CancelledRun, CrashedRun, FailedRun, UnfinishedRun


class StateType(enum.StrEnum):
    """The nine kinds of state a flow run or task run can be in."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"


TERMINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)
#: Types whose runs may still be executing somewhere: used by crash detection.
ACTIVE_TYPES = frozenset({StateType.PENDING, StateType.RUNNING, StateType.CANCELLING})

_DEFAULT_NAMES = {t: t.value.title() for t in StateType}


class State:
    """The state of a flow run or task run.

    Attributes:
        type: the `StateType`.
        name: the display name; defaults to the type's title ("Completed").
        message: a human-readable reason, e.g. the error of a failure.
        timestamp: when the state was entered (seconds since the epoch, UTC).
        data: the run's return value, or the exception for Failed/Crashed states.
    """

    __slots__ = ("data", "message", "name", "state_details", "timestamp", "type")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        timestamp: float | None = None,
        state_details: dict[str, Any] | None = None,
    ) -> None:
        self.type = type
        self.name = name or _DEFAULT_NAMES[type]
        self.message = message
        self.data = data
        self.timestamp = time.time() if timestamp is None else timestamp
        self.state_details = state_details

    # -- predicates -------------------------------------------------------------
    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in TERMINAL_TYPES

    # -- data -------------------------------------------------------------------
    def result(self, raise_on_failure: bool = True) -> Any:
        """Return the run's result, or raise what made it fail.

        A Failed or Crashed state raises the original exception (or `FailedRun`
        when the state carries none); `raise_on_failure=False` returns the
        exception instead. A Cancelled state raises `CancelledRun`.
        """
        if self.type is StateType.COMPLETED:
            return self.data
        if self.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
            exc = self.data if isinstance(self.data, BaseException) else None
            if exc is None:
                kind = {
                    StateType.FAILED: FailedRun,
                    StateType.CRASHED: CrashedRun,
                    StateType.CANCELLED: CancelledRun,
                }[self.type]
                exc = kind(self.message or f"Run is in a {self.name} state.")
            if raise_on_failure:
                raise exc
            return exc
        if raise_on_failure:
            raise UnfinishedRun(f"Run is in a {self.name} state; its result is not available yet.")
        return None

    def copy(self, **changes: Any) -> State:
        values = {slot: getattr(self, slot) for slot in State.__slots__}
        values.update(changes)
        return State(**values)

    def __repr__(self) -> str:
        message = f"message={self.message!r}, " if self.message else ""
        kind = "" if self.name == _DEFAULT_NAMES[self.type] else f"type={self.type.value}, "
        return f"{self.name}({message}{kind})".replace(", )", ")")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.type, self.name, self.message, self.timestamp) == (
            other.type,
            other.name,
            other.message,
            other.timestamp,
        )

    __hash__ = object.__hash__


def _constructor(state_type: StateType, default_name: str | None = None) -> Any:
    def make(
        message: str | None = None,
        data: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> State:
        return State(state_type, name or default_name, message, data, **kwargs)

    make.__name__ = default_name or _DEFAULT_NAMES[state_type]
    make.__doc__ = f"Return a {make.__name__} state ({state_type.value})."
    return make


Scheduled = _constructor(StateType.SCHEDULED)
Late = _constructor(StateType.SCHEDULED, "Late")
AwaitingRetry = _constructor(StateType.SCHEDULED, "AwaitingRetry")
Pending = _constructor(StateType.PENDING)
Running = _constructor(StateType.RUNNING)
Retrying = _constructor(StateType.RUNNING, "Retrying")
Completed = _constructor(StateType.COMPLETED)
Cached = _constructor(StateType.COMPLETED, "Cached")
Failed = _constructor(StateType.FAILED)
TimedOut = _constructor(StateType.FAILED, "TimedOut")
Crashed = _constructor(StateType.CRASHED)
Cancelled = _constructor(StateType.CANCELLED)
Cancelling = _constructor(StateType.CANCELLING)
Paused = _constructor(StateType.PAUSED)
Suspended = _constructor(StateType.PAUSED, "Suspended")
