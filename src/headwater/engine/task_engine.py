"""Task runs: creating them, and the thin sync and async drivers around the machine.

This is the hot path: a sequential task call inside a flow costs a few
microseconds here plus the user function. No database round trip happens;
states go to the recorder.
"""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any

from headwater.concurrency import _tags as tag_limits
from headwater.context import (
    FlowRunContext,
    TaskRunContext,
    current_tags,
    flow_run_context,
    task_run_context,
)
from headwater.core.ids import uuid7_hex
from headwater.core.states import State, StateType
from headwater.engine import caching
from headwater.engine.hooks import call_hooks, call_hooks_async, hooks_for
from headwater.engine.inputs import (
    check_wait_for,
    needs_resolution,
    resolve_arguments,
    task_inputs,
)
from headwater.engine.machine import Machine, UpstreamNotReady
from headwater.engine.recorder import get_recorder
from headwater.engine.results import inherited
from headwater.engine.runs import TaskRun, state_row
from headwater.engine.timeouts import sync_timeout
from headwater.exceptions import ConcurrencySlotAcquisitionError, TaskRunTimeoutError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from headwater.tasks import Task

_PENDING = StateType.PENDING
_outside_counters: dict[str, int] = {}


def emit_task_state(run: TaskRun, state: State) -> None:
    get_recorder().task_run(run.row(), state_row(state, run.flow_run_hex, run.hex_id))


def new_task_run(
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext | None,
) -> TaskRun:
    """Create a task run in Pending and record it."""
    task_key = task.task_key
    if flow_context is not None:
        number = flow_context.next_dynamic_key(task_key)
        flow_run_hex = flow_context.flow_run.hex_id
    else:
        number = _outside_counters.get(task_key, 0)
        _outside_counters[task_key] = number + 1
        flow_run_hex = None
    extra_tags = current_tags()
    tags = sorted(task.tags | extra_tags) if extra_tags else task.sorted_tags
    resolve = needs_resolution(args, kwargs)
    inputs = task_inputs(args, kwargs, wait_for) if wait_for or resolve else None
    state = State(_PENDING)
    run = TaskRun(
        hex_id=uuid7_hex(),
        name=f"{task.name}-{number}",
        task_key=task_key,
        task_name=task.name,
        dynamic_key=str(number),
        flow_run_hex=flow_run_hex,
        tags=tags,
        state=state,
        signature=task.signature,
        args=args,
        kwargs=kwargs,
        task_inputs=inputs,
        resolve_inputs=resolve,
    )
    if task.task_run_name is not None:
        run.name = task.render_run_name(run)
    get_recorder().task_run(run.row(), state_row(state, flow_run_hex, run.hex_id))
    return run


def _prepare(
    run: TaskRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if wait_for:
        check_wait_for(wait_for)
    if run.resolve_inputs:
        return resolve_arguments(args, kwargs)
    return args, kwargs


def _enter(
    task: Task[Any, Any], run: TaskRun, flow_context: FlowRunContext | None
) -> tuple[Machine, contextvars.Token[TaskRunContext | None]]:
    """The run's state machine, and the run entered as the current task run."""
    machine = Machine(run, "Task", task.retry_policy, emit_task_state, task.timeout_seconds)
    log_prints = task.log_prints
    if log_prints is None:
        log_prints = flow_context.log_prints if flow_context is not None else False
    return machine, task_run_context.set(TaskRunContext(task, run, flow_context, log_prints))


def _finished(run: TaskRun) -> State:
    """The final state, logged when it is not Completed."""
    state = run.state
    if state.type is not StateType.COMPLETED:
        _log_failure(run, state)
    return state


def run_task_sync(
    task: Task[Any, Any],
    run: TaskRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext | None,
) -> State:
    """Run a sync task to a final state, with retries and timeout."""
    machine, token = _enter(task, run, flow_context)
    slots = None
    step: caching.CacheStep | None = None
    try:
        try:
            args, kwargs = _prepare(run, args, kwargs, wait_for)
            if run.tags:  # waits for a slot of each "tag:<tag>" concurrency limit
                slots = tag_limits.hold(run)
        except (UpstreamNotReady, ConcurrencySlotAcquisitionError) as exc:
            machine.failed(exc)
        else:
            options = task.result_options
            if options is None and task.persist_result is None:
                options = inherited(flow_context)
            if options is not None:
                step = caching.start(task, run, options, flow_context, machine, args, kwargs)
            if options is None or step is not None:
                fn = task.fn
                timeout = task.timeout_seconds
                while True:
                    machine.begin()
                    if task.on_running_hooks:
                        call_hooks(task.on_running_hooks, task, run, run.state)
                    try:
                        if timeout is None:
                            value = fn(*args, **kwargs)
                        else:
                            with sync_timeout(timeout, TaskRunTimeoutError):
                                value = fn(*args, **kwargs)
                    except BaseException as exc:
                        delay = machine.failed(exc)
                    else:
                        if step is None:
                            delay = machine.succeeded(value)
                        else:
                            delay = step.succeeded(machine, value)
                    if delay is None:
                        break
                    _log_retry(run, delay)
                    if delay:
                        time.sleep(delay)
    finally:
        task_run_context.reset(token)
        if slots is not None:
            slots.release()
        if step is not None:
            step.release()
    state = _finished(run)
    if task.on_commit_hooks or task.on_rollback_hooks:
        _transaction_hooks(task, state)
    hooks = hooks_for(task, state)
    if hooks:
        call_hooks(hooks, task, run, state)
    _reraise_interrupts(state)
    return state


async def run_task_async(
    task: Task[Any, Any],
    run: TaskRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext | None,
) -> State:
    """Run an async task to a final state, with retries and timeout."""
    import asyncio

    machine, token = _enter(task, run, flow_context)
    slots = None
    step: caching.CacheStep | None = None
    try:
        try:
            if wait_for or run.resolve_inputs:
                # Upstream futures may still be running in threads: wait off the loop.
                args, kwargs = await asyncio.to_thread(_prepare, run, args, kwargs, wait_for)
            if run.tags:  # waits for a slot of each "tag:<tag>" concurrency limit
                slots = await tag_limits.hold_async(run)
        except (UpstreamNotReady, ConcurrencySlotAcquisitionError) as exc:
            machine.failed(exc)
        else:
            options = task.result_options
            if options is None and task.persist_result is None:
                options = inherited(flow_context)
            if options is not None:
                # Off the loop: the key's lock may be held by another run on this loop.
                step = await asyncio.to_thread(
                    caching.start, task, run, options, flow_context, machine, args, kwargs
                )
            if options is None or step is not None:
                timeout = task.timeout_seconds
                while True:
                    machine.begin()
                    if task.on_running_hooks:
                        await call_hooks_async(task.on_running_hooks, task, run, run.state)
                    try:
                        if timeout is None:
                            value = await task.fn(*args, **kwargs)
                        else:
                            try:
                                async with asyncio.timeout(timeout):
                                    value = await task.fn(*args, **kwargs)
                            except TimeoutError as exc:
                                raise TaskRunTimeoutError() from exc
                    except BaseException as exc:
                        if isinstance(exc, asyncio.CancelledError):
                            machine.failed(exc)
                            raise
                        delay = machine.failed(exc)
                    else:
                        if step is None:
                            delay = machine.succeeded(value)
                        else:
                            delay = step.succeeded(machine, value)
                    if delay is None:
                        break
                    _log_retry(run, delay)
                    if delay:
                        await asyncio.sleep(delay)
    finally:
        task_run_context.reset(token)
        if slots is not None:
            await asyncio.to_thread(slots.release)
        if step is not None:
            step.release()
    state = _finished(run)
    if task.on_commit_hooks or task.on_rollback_hooks:
        _transaction_hooks(task, state)
    hooks = hooks_for(task, state)
    if hooks:
        await call_hooks_async(hooks, task, run, state)
    _reraise_interrupts(state)
    return state


def _transaction_hooks(task: Task[Any, Any], state: State) -> None:
    """A run that completed (not from the cache) joins the open transaction's hooks."""
    if state.type is StateType.COMPLETED and state.name != "Cached":
        from headwater.transactions import after_task_completed

        after_task_completed(task.on_commit_hooks, task.on_rollback_hooks)


def _log_retry(run: TaskRun, delay: float) -> None:
    from headwater.logging.run_logger import task_run_logger

    task_run_logger(run).warning("%s", run.state.message)


def _log_failure(run: TaskRun, state: State) -> None:
    """Failed and crashed task runs say so in the run log, with the traceback."""
    from headwater.logging.run_logger import task_run_logger

    data = state.data
    exc_info = (type(data), data, data.__traceback__) if isinstance(data, Exception) else None
    task_run_logger(run).error("Finished in state %r", state, exc_info=exc_info)


def _reraise_interrupts(state: State) -> None:
    # Ctrl-C and interpreter exit must still stop the program after the run
    # is recorded as Crashed.
    data = state.data
    if (
        state.type is StateType.CRASHED
        and isinstance(data, BaseException)
        and not isinstance(data, Exception)
    ):
        raise data


def call_task(
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    return_state: bool,
) -> Any:
    """A direct call of a task: run it here and return its result (or state)."""
    flow_context = flow_run_context.get()
    run = new_task_run(task, args, kwargs, wait_for, flow_context)
    if task.is_async:
        return _call_task_async(task, run, args, kwargs, wait_for, flow_context, return_state)
    state = run_task_sync(task, run, args, kwargs, wait_for, flow_context)
    return state if return_state else state.result()


async def _call_task_async(
    task: Task[Any, Any],
    run: TaskRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext | None,
    return_state: bool,
) -> Any:
    state = await run_task_async(task, run, args, kwargs, wait_for, flow_context)
    return state if return_state else state.result()
