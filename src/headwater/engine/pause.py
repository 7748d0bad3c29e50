"""Pausing the flow run of this process: the engine side of `pause_flow_run`/`suspend_flow_run`.

The server arbitrates (`POST /api/flow_runs/{id}/pause`): it moves the run to
Paused or Suspended, or answers that this pause key fired before (a run started
again after a suspension) with the input it was resumed with. The run's records
are made durable first, so the server never sees a pause before the states
that led to it.

- Paused: this process waits in place, long-polling the run until someone
  resumes it (Running again, same attempt), cancels it, or the timeout passes
  (`FlowPauseTimeout`, so the run fails like Prefect's).
- Suspended: `Pause` (an `EngineSignal`) unwinds the flow; the flow engine ends
  the run's process without changing the state the server recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from headwater.context import flow_run_context, task_run_context
from headwater.core.states import State, StateType
from headwater.engine.recorder import get_recorder
from headwater.exceptions import (
    CancelSignal,
    FlowPauseError,
    FlowPauseTimeout,
    MissingContextError,
    Pause,
)

#: Seconds the run's records may take to be written before pausing anyway fails.
COMMIT_TIMEOUT = 60.0
#: Counter key (in the flow run context's dynamic-key counters) of pauses without a key;
#: a NUL cannot start a task key.
_PAUSE_COUNTER = "\x00pause"
#: The longest one long-poll request is held (within the client's 30 s read timeout).
MAX_WAIT = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class PauseOutcome:
    """How a pause ended: resumed (with the input, if any)."""

    has_input: bool
    run_input: Any


def _seconds(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def pause_current_run(
    *,
    function: str,
    key: str | None,
    timeout: float | None,
    poll_interval: float,
    suspend: bool,
    input_schema: dict[str, Any] | None,
    description: str | None,
) -> PauseOutcome:
    """Pause the flow run of this context until it is resumed; see the module docstring.

    Raises:
        MissingContextError: not inside a flow run. FlowPauseError: inside a task run,
            or suspending a run that no deployment could start again.
        FlowPauseTimeout: not resumed within `timeout` seconds.
        Pause: suspended (the engine ends the process).
    """
    context = flow_run_context.get()
    task_context = task_run_context.get()
    if context is None:
        raise MissingContextError(
            f"{function}() pauses a flow run, so it must be called inside a @flow function "
            "(while the flow runs), not at module level or in a plain function."
        )
    if task_context is not None:
        raise FlowPauseError(
            f"{function}() was called inside task {task_context.task_run.task_name!r}: tasks "
            "cannot pause; call it in the flow's function, between tasks."
        )
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}.")
    if poll_interval <= 0:
        raise ValueError(f"poll_interval must be positive, not {poll_interval!r}.")
    run = context.flow_run
    if suspend and run.deployment_hex is None:
        raise FlowPauseError(
            f"suspend_flow_run() needs a run of a deployment (flow run {run.name!r} is not "
            "one): a suspended run is started again by a worker. Deploy the flow, or use "
            "pause_flow_run() to wait in this process."
        )
    pause_key = key if key is not None else str(context.next_dynamic_key(_PAUSE_COUNTER))

    from headwater.client.api import get_client
    from headwater.logging.run_logger import flow_run_logger

    get_recorder().commit().result(COMMIT_TIMEOUT)
    client = get_client()
    answer = client.request(
        "POST",
        f"/flow_runs/{run.hex_id}/pause",
        json={
            "key": pause_key,
            "timeout_seconds": timeout,
            "suspend": suspend,
            "input_schema": input_schema,
            "description": description,
        },
    )
    if not answer["paused"]:  # this pause fired before this process started the flow
        return PauseOutcome(answer["has_input"], answer["run_input"])
    started = time.monotonic()
    run.state = State(
        StateType.PAUSED, answer["state_name"], timestamp=_seconds(answer["state_timestamp"])
    )
    log = flow_run_logger(run)
    if suspend:
        log.info("Suspended (pause key %r): the run continues when it is resumed.", pause_key)
        raise Pause(f"Flow run {run.name!r} was suspended.")
    log.info("Paused (pause key %r): waiting to be resumed.", pause_key)
    deadline = None if timeout is None else started + timeout
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        wait = poll_interval if remaining is None else max(0.0, min(poll_interval, remaining))
        info = client.request(
            "GET",
            f"/flow_runs/{run.hex_id}/pause",
            params={"wait": min(wait, MAX_WAIT)},
        )
        kind = StateType(info["state_type"])
        if kind is StateType.RUNNING:
            run.state = State(
                StateType.RUNNING, info["state_name"], timestamp=_seconds(info["state_timestamp"])
            )
            log.info("Resumed.")
            return PauseOutcome(info["has_input"], info["run_input"])
        if kind in (StateType.CANCELLED, StateType.CANCELLING):
            raise CancelSignal("Cancelled while paused.")
        if kind is not StateType.PAUSED:
            raise FlowPauseTimeout(
                info.get("state_message")
                or f"Flow run left its pause for {info['state_name']} instead of resuming."
            )
        if remaining is not None and remaining <= 0:
            raise FlowPauseTimeout(
                f"Flow run was paused and not resumed within {timeout:g} second(s)."
            )


def suspended(run: Any, signal: BaseException) -> bool:
    """Whether the attempt ended because the run was suspended (its state is set already)."""
    return isinstance(signal, Pause) and run.state.type is StateType.PAUSED
