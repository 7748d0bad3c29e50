"""The run state machine, shared by task runs and flow runs, with no I/O of its own.

It decides the next state from the current one, the outcome of one attempt
of the user function and the run's policy (retries, delays, retry condition).
Drivers (sync and async, in `task_engine` and `flow_engine`) call the user
function, sleep when told to, and call hooks; the machine hands every state
it enters to an `emit` callback, which records it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from headwater.core.retries import delay_for_attempt
from headwater.core.states import State, StateType
from headwater.exceptions import CancelSignal, FlowRunTimeoutError, TaskRunTimeoutError
from headwater.logging import run_logger as _logs

_PENDING = StateType.PENDING
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_FAILED = StateType.FAILED


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a run is retried: `retries` extra attempts after the given delays."""

    retries: int = 0
    delays: tuple[float, ...] = ()
    jitter_factor: float | None = None
    #: called with the Failed state the run would enter; False stops retrying
    condition: Callable[[State], bool] | None = None


NO_RETRIES = RetryPolicy()


class UpstreamNotReady(Exception):
    """An upstream future this run depends on did not complete."""


class Machine:
    """The states one run goes through. `run` is a `FlowRun` or `TaskRun`."""

    __slots__ = ("emit", "kind", "policy", "run", "timeout_seconds")

    def __init__(
        self,
        run: Any,
        kind: str,
        policy: RetryPolicy,
        emit: Callable[[Any, State], None],
        timeout_seconds: float | None = None,
    ) -> None:
        self.run = run
        self.kind = kind  # "Task" or "Flow", for messages
        self.policy = policy
        self.emit = emit
        self.timeout_seconds = timeout_seconds

    @property
    def state(self) -> State:
        state: State = self.run.state
        return state

    def _enter(self, state: State) -> State:
        run = self.run
        if _logs._secret_texts and state.message:  # an error message may quote a secret
            state.message = _logs.mask_secrets(state.message)
        run.state = state
        if state.type is _RUNNING:
            run.run_count += 1
            if run.start_time is None:
                run.start_time = state.timestamp
        elif state.type in (_COMPLETED, _FAILED, StateType.CRASHED, StateType.CANCELLED):
            run.end_time = state.timestamp
        self.emit(run, state)
        return state

    def begin(self) -> State:
        """Enter Running (from Pending, or Retrying after AwaitingRetry)."""
        if self.run.run_count:
            return self._enter(State(_RUNNING, "Retrying"))
        return self._enter(State(_RUNNING))

    def succeeded(self, value: Any) -> float | None:
        """Record a successful attempt; a returned `State` becomes the final state.

        Returns a delay in seconds when the run should be retried (a returned
        Failed state is retried like an exception), else None.
        """
        if isinstance(value, State):
            if value.type is _FAILED:
                return self._failed_state(value)
            self._enter(value.copy(timestamp=None))
            return None
        self._enter(State(_COMPLETED, data=value))
        return None

    def failed(self, exc: BaseException) -> float | None:
        """Record a failed attempt; returns the delay before a retry, or None if final."""
        if isinstance(exc, UpstreamNotReady):
            self._enter(State(_FAILED, "NotReady", str(exc), data=exc))
            return None
        if isinstance(exc, CancelSignal):
            self._enter(
                State(StateType.CANCELLED, message=f"{self.kind} run was cancelled.", data=exc)
            )
            return None
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit, asyncio cancellation, engine signals:
            # the run did not fail on its own, it was stopped from outside.
            detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
            self._enter(
                State(
                    StateType.CRASHED,
                    message=f"{self.kind} run was interrupted by {detail}",
                    data=exc,
                )
            )
            return None
        if isinstance(exc, (TaskRunTimeoutError, FlowRunTimeoutError)):
            message = f"{self.kind} run exceeded timeout of {self.timeout_seconds:g} second(s)"
            return self._failed_state(State(_FAILED, "TimedOut", message, data=exc))
        message = f"{self.kind} run encountered an exception {type(exc).__name__}: {exc}"
        return self._failed_state(State(_FAILED, message=message, data=exc))

    def _failed_state(self, failed: State) -> float | None:
        policy = self.policy
        attempt = self.run.run_count  # attempts so far, this one included
        if 0 < attempt <= policy.retries and (policy.condition is None or policy.condition(failed)):
            delay = delay_for_attempt(list(policy.delays), attempt - 1, policy.jitter_factor)
            self._enter(
                State(
                    StateType.SCHEDULED,
                    "AwaitingRetry",
                    f"Retry {attempt} of {policy.retries} in {delay:g} s after: {failed.message}",
                )
            )
            return delay
        self._enter(failed)
        return None

    def crash(self, exc: BaseException) -> State:
        """Enter Crashed because the engine itself could not go on."""
        return self._enter(
            State(
                StateType.CRASHED,
                message=f"{self.kind} run crashed: {type(exc).__name__}: {exc}",
                data=exc,
            )
        )
