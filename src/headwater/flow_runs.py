"""Human-in-the-loop: pause or suspend the running flow, and resume it from anywhere.

    from headwater import flow, pause_flow_run
    from headwater.input import RunInput

    class Approval(RunInput):
        approved: bool

    @flow
    def release() -> str:
        approval = pause_flow_run(wait_for_input=Approval, timeout=3600)
        return "shipped" if approval.approved else "held"

Then `headwater flow-run resume <id> --input approved=true` (or `resume_flow_run`,
or `POST /api/flow_runs/{id}/resume`). See docs/pause-and-input.md.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, overload

import pydantic

from headwater.input._run_input import description_of, input_model, load

__all__ = ["pause_flow_run", "resume_flow_run", "suspend_flow_run"]

T = TypeVar("T")


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _wait(
    function: str,
    wait_for_input: Any,
    *,
    timeout: float | None,
    poll_interval: float,
    key: str | None,
    suspend: bool,
) -> Any:
    from headwater.engine.pause import pause_current_run

    schema = description = None
    if wait_for_input is not None:
        model, _ = input_model(wait_for_input)
        schema = model.model_json_schema()
        description = description_of(model)
    outcome = pause_current_run(
        function=function,
        key=key,
        timeout=timeout,
        poll_interval=poll_interval,
        suspend=suspend,
        input_schema=schema,
        description=description,
    )
    if wait_for_input is None or not outcome.has_input:
        return None
    return load(wait_for_input, outcome.run_input)


def _sync_or_async(call: Callable[[], T]) -> Any:
    """Run `call` here, or (called in an async flow) return an awaitable running it in a
    thread, so the event loop keeps serving the flow's other work while it waits."""
    if _in_event_loop():
        return asyncio.to_thread(call)
    return call()


@overload
def pause_flow_run(
    wait_for_input: None = None,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> None: ...
@overload
def pause_flow_run(
    wait_for_input: type[T],
    timeout: float | None = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> T: ...
def pause_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> Any:
    """Pause the running flow run until it is resumed; its process waits.

    The run is Paused (state type PAUSED) until someone resumes it
    (`resume_flow_run`, the API or `headwater flow-run resume`); then it is Running
    again and this call returns. In an async flow, `await` it.

    Args:
        wait_for_input: a `RunInput` (or any pydantic model, or a plain type such as
            `bool`): the run waits for input valid against it and this returns it.
        timeout: seconds to wait; then `FlowPauseTimeout` is raised (the run fails
            unless the flow catches it). None waits without limit.
        poll_interval: the longest the run goes without asking the server whether it
            was resumed (each ask is held open until then, so a resume shows at once).
        key: names the pause; by default pauses are numbered per run. A key that
            paused this run before returns at once (with the input given then).

    Raises:
        MissingContextError: called outside a flow run. FlowPauseError: in a task.
        FlowPauseTimeout: not resumed in time.

    Example:
        >>> approval = pause_flow_run(wait_for_input=Approval, timeout=600)
    """
    call = functools.partial(
        _wait,
        "pause_flow_run",
        wait_for_input,
        timeout=timeout,
        poll_interval=poll_interval,
        key=key,
        suspend=False,
    )
    return _sync_or_async(call)


def suspend_flow_run(
    wait_for_input: Any = None,
    timeout: float | None = 3600,
    key: str | None = None,
) -> Any:
    """Suspend the running flow run of a deployment: its process exits, freeing its worker.

    The run is Suspended (state type PAUSED) until resumed; then it is scheduled
    again on its deployment, a worker starts the flow from the beginning, and this
    call (the same pause key: same position in the flow, or the same `key`)
    returns the input given at resume instead of suspending again. Tasks that
    persist their results are not run again.

    Args:
        wait_for_input: the type of input to wait for (see `pause_flow_run`).
        timeout: seconds after which a resume is refused and the run fails.
        key: names the pause (default: pauses are numbered per run).

    Raises:
        FlowPauseError: the run is not a run of a deployment (nothing could restart it).
    """
    call = functools.partial(
        _wait,
        "suspend_flow_run",
        wait_for_input,
        timeout=timeout,
        poll_interval=10.0,
        key=key,
        suspend=True,
    )
    return _sync_or_async(call)


def resume_flow_run(flow_run_id: uuid.UUID | str, run_input: Any = None) -> None:
    """Resume a paused or suspended flow run, with `run_input` if it waits for input.

    `run_input` is a dict (or a `RunInput` instance) valid against the input schema
    of the pause; the server refuses anything else with a message naming the field.

    Raises:
        InvalidRequest: the input is missing or invalid. Conflict: the run is not paused
            (or its pause timed out). ObjectNotFound: no such run.

    Example:
        >>> resume_flow_run(run_id, run_input={"approved": True})
    """
    from headwater.client.api import get_client

    run_id = flow_run_id if isinstance(flow_run_id, uuid.UUID) else uuid.UUID(str(flow_run_id))
    if isinstance(run_input, pydantic.BaseModel):
        run_input = run_input.model_dump(mode="json")
    elif run_input is not None and not isinstance(run_input, dict):
        raise TypeError(
            f"run_input must be a dict or a RunInput, not {type(run_input).__name__}; for a "
            'plain type (wait_for_input=int) give {"value": ...}.'
        )
    body = {"run_input": run_input}
    get_client().request("POST", f"/flow_runs/{run_id}/resume", json=body)
