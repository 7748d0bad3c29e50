"""The process-pool side of task runs: prepare in the parent, run in a child, finish.

The child records into memory; its records travel back with the final state
and the parent's recorder writes them, so the store keeps a single writer.
"""

from __future__ import annotations

import concurrent.futures as cf
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import cloudpickle

from headwater.core.records import Batch
from headwater.core.states import State, StateType
from headwater.engine import recorder as recorder_module
from headwater.engine.inputs import check_wait_for, resolve_arguments
from headwater.engine.machine import NO_RETRIES, Machine, UpstreamNotReady
from headwater.engine.recorder import Recorder, get_recorder
from headwater.engine.task_engine import emit_task_state

if TYPE_CHECKING:
    from headwater.context import FlowRunContext
    from headwater.engine.runs import TaskRun
    from headwater.tasks import Task


class MemoryWriter:
    """A writer that keeps batches in memory (a child's records, to send back)."""

    def __init__(self) -> None:
        self.batch = Batch()

    def open(self) -> None:
        pass

    def write(self, batch: Batch) -> None:
        self.batch.merge(batch)

    def active_runs(self, host: str) -> list[tuple[uuid.UUID, str]]:
        return []

    def mark_crashed(
        self, flow_run_ids: Sequence[uuid.UUID | str], message: str, now: float
    ) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> Batch:
        batch, self.batch = self.batch, Batch()
        return batch


def prepare(
    task: Task[Any, Any],
    run: TaskRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext | None,
    future: cf.Future[State],
) -> bytes | None:
    """Resolve inputs here (futures do not cross processes) and pickle the call."""
    try:
        if wait_for:
            check_wait_for(wait_for)
        args, kwargs = resolve_arguments(args, kwargs)
    except UpstreamNotReady as exc:
        Machine(run, "Task", NO_RETRIES, emit_task_state).failed(exc)
        future.set_result(run.state)
        return None
    flow_run = flow_context.flow_run if flow_context is not None else None
    log_prints = flow_context.log_prints if flow_context is not None else False
    try:
        return bytes(cloudpickle.dumps((task, run, args, kwargs, flow_run, log_prints)))
    except Exception as exc:
        Machine(run, "Task", NO_RETRIES, emit_task_state).failed(
            TypeError(
                f"Task run {run.name!r} cannot be sent to a worker process: its task or "
                f"arguments cannot be pickled ({type(exc).__name__}: {exc}). Use the "
                "ThreadPoolTaskRunner for it, or pass picklable arguments."
            )
        )
        future.set_result(run.state)
        return None


def run_in_child(payload: bytes) -> bytes:
    """Run one task run in this worker process; return its state and records."""
    from headwater.context import FlowRunContext, flow_run_context
    from headwater.task_runners import ThreadPoolTaskRunner, execute

    task, run, args, kwargs, flow_run, log_prints = cloudpickle.loads(payload)
    writer = MemoryWriter()
    recorder_module._recorder = Recorder(writer, flush_interval=3600)
    flow_context = None
    token = None
    if flow_run is not None:
        flow_context = FlowRunContext(None, flow_run, ThreadPoolTaskRunner(), log_prints)  # type: ignore[arg-type]
        token = flow_run_context.set(flow_context)
    try:
        state = execute(task, run, args, kwargs, None, flow_context)
    finally:
        if token is not None:
            flow_run_context.reset(token)
        recorder_module._recorder.flush()
    return _dump(state, run, writer.take())


def _dump(state: State, run: TaskRun, batch: Batch) -> bytes:
    timing = (run.run_count, run.start_time, run.end_time)
    try:
        return bytes(cloudpickle.dumps((state, timing, batch)))
    except Exception as exc:
        failed = State(
            StateType.FAILED,
            message=(
                f"Task run {run.name!r} finished in a worker process but its result cannot "
                f"be sent back ({type(exc).__name__}: {exc}); return a picklable value."
            ),
        )
        return bytes(cloudpickle.dumps((failed, timing, batch)))


def finish(done: cf.Future[bytes], run: TaskRun, future: cf.Future[State]) -> None:
    """Take the child's outcome into the parent: records to the recorder, state to the future."""
    try:
        state, (run_count, start_time, end_time), batch = cloudpickle.loads(done.result())
    except BaseException as exc:
        future.set_result(Machine(run, "Task", NO_RETRIES, emit_task_state).crash(exc))
        return
    get_recorder().merge(batch)
    run.run_count, run.start_time, run.end_time = run_count, start_time, end_time
    run.state = state
    if run.hex_id not in batch.task_runs or batch.task_runs[run.hex_id][5] != state.type:
        # e.g. the result could not be sent back: record the state the parent saw
        emit_task_state(run, state)
    future.set_result(state)
