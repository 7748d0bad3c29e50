"""Task runners: where `.submit()` and `.map()` execute task runs.

`ThreadPoolTaskRunner` (the default) runs them on a bounded pool of threads;
`ProcessPoolTaskRunner` in worker processes. Both implement `TaskRunner`,
the interface Dask and Ray runners implement too: `submit()` takes a task
run already recorded as Pending and returns a `HeadwaterFuture`.

A submitted run whose arguments include other futures is started only when
those are final, so waiting never occupies a pool slot.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import contextvars
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

from headwater.core.states import State, StateType
from headwater.engine.inputs import upstream_futures
from headwater.futures import HeadwaterFuture

if TYPE_CHECKING:
    import asyncio

    from headwater.context import FlowRunContext
    from headwater.engine.runs import TaskRun
    from headwater.tasks import Task


class TaskRunner(abc.ABC):
    """Runs submitted task runs somewhere and hands back futures."""

    def __init__(self) -> None:
        self._outstanding: set[cf.Future[State]] = set()
        self._outstanding_lock = threading.Lock()

    @abc.abstractmethod
    def duplicate(self) -> Self:
        """A new, unstarted runner with the same configuration (each flow run gets one)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wait_outstanding()

    @abc.abstractmethod
    def _launch(
        self,
        task: Task[Any, Any],
        run: TaskRun,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any] | None,
        flow_context: FlowRunContext | None,
        future: cf.Future[State],
    ) -> None:
        """Start the run now that its upstream futures are final; complete `future`."""

    def submit(
        self,
        task: Task[Any, Any],
        run: TaskRun,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any] | None,
        flow_context: FlowRunContext | None,
    ) -> HeadwaterFuture[Any]:
        """Start `run` once its upstream futures are final; return its future."""
        future: cf.Future[State] = cf.Future()
        with self._outstanding_lock:
            self._outstanding.add(future)
        future.add_done_callback(self._forget)
        upstream: list[HeadwaterFuture[Any]] = []
        if run.task_inputs is not None:
            upstream_futures([args, kwargs, list(wait_for or ())], upstream)
        waiting = [f for f in upstream if not f.done()]

        def launch() -> None:
            try:
                self._launch(task, run, args, kwargs, wait_for, flow_context, future)
            except BaseException as exc:  # the runner itself failed: never hang the caller
                if not future.done():
                    from headwater.engine.machine import NO_RETRIES, Machine
                    from headwater.engine.task_engine import emit_task_state

                    Machine(run, "Task", NO_RETRIES, emit_task_state).crash(exc)
                    future.set_result(run.state)

        if not waiting:
            launch()
        else:
            remaining = [len(waiting)]
            lock = threading.Lock()

            def upstream_done(_: HeadwaterFuture[Any]) -> None:
                with lock:
                    remaining[0] -= 1
                    ready = remaining[0] == 0
                if ready:
                    launch()

            for upstream_future in waiting:
                upstream_future.add_done_callback(upstream_done)
        return HeadwaterFuture(run, future)

    def _forget(self, future: cf.Future[State]) -> None:
        with self._outstanding_lock:
            self._outstanding.discard(future)

    def has_outstanding(self) -> bool:
        return bool(self._outstanding)

    def wait_outstanding(self) -> None:
        """Block until every submitted run is final."""
        while True:
            with self._outstanding_lock:
                pending = list(self._outstanding)
            if not pending:
                return
            cf.wait(pending)


def _default_workers() -> int:
    from headwater.settings import get_settings

    configured = get_settings().task_runner_max_workers
    return configured or min(32, (os.cpu_count() or 1) + 4)


_thread_loops = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    """One event loop per pool thread, reused for every async task it runs."""
    import asyncio

    loop: asyncio.AbstractEventLoop | None = getattr(_thread_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_loops.loop = loop
    return loop


def execute(
    task: Task[Any, Any],
    run: TaskRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext | None,
) -> State:
    """Run a task run to its final state in this thread, sync or async."""
    from headwater.engine.task_engine import run_task_async, run_task_sync

    try:
        if task.is_async:
            return _thread_loop().run_until_complete(
                run_task_async(task, run, args, kwargs, wait_for, flow_context)
            )
        return run_task_sync(task, run, args, kwargs, wait_for, flow_context)
    except BaseException:
        # Interrupts are re-raised after being recorded as Crashed; in a pool
        # thread the state is the outcome.
        if run.state.type is StateType.CRASHED:
            return run.state
        raise


class _ExecutorTaskRunner(TaskRunner):
    """A runner backed by a `concurrent.futures` executor, created on first submit."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers!r}.")
        self.max_workers = max_workers
        self._executor: cf.Executor | None = None
        self._executor_lock = threading.Lock()

    @abc.abstractmethod
    def _new_executor(self) -> cf.Executor:
        """The executor this runner submits to."""

    def _pool(self) -> cf.Executor:
        executor = self._executor
        if executor is None:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = self._new_executor()
                executor = self._executor
        return executor

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class ThreadPoolTaskRunner(_ExecutorTaskRunner):
    """Runs task runs on a bounded pool of threads (the default runner).

    Args:
        max_workers: the pool size; defaults to `HEADWATER_TASK_RUNNER_MAX_WORKERS`
            or min(32, CPUs + 4).
    """

    def duplicate(self) -> Self:
        return type(self)(max_workers=self.max_workers)

    def _new_executor(self) -> cf.Executor:
        return cf.ThreadPoolExecutor(
            self.max_workers or _default_workers(), thread_name_prefix="headwater-task"
        )

    def _launch(
        self,
        task: Task[Any, Any],
        run: TaskRun,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any] | None,
        flow_context: FlowRunContext | None,
        future: cf.Future[State],
    ) -> None:
        context = contextvars.copy_context()
        self._pool().submit(
            context.run, _complete, future, task, run, args, kwargs, wait_for, flow_context
        )

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


def _complete(
    future: cf.Future[State],
    task: Task[Any, Any],
    run: TaskRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext | None,
) -> None:
    try:
        state = execute(task, run, args, kwargs, wait_for, flow_context)
    except BaseException as exc:
        from headwater.engine.machine import NO_RETRIES, Machine
        from headwater.engine.task_engine import emit_task_state

        state = Machine(run, "Task", NO_RETRIES, emit_task_state).crash(exc)
    future.set_result(state)


class ProcessPoolTaskRunner(_ExecutorTaskRunner):
    """Runs task runs in worker processes, for CPU-bound Python code.

    Tasks, arguments and results cross the process boundary with cloudpickle.
    Each child records into memory and sends its records back with the final
    state, so the parent's recorder stays the only writer of the store.

    Args:
        max_workers: the number of processes; defaults to the number of CPUs.
        mp_context: the multiprocessing start method ("spawn" by default, which
            is safe with the threads a flow run has).
    """

    def __init__(self, max_workers: int | None = None, mp_context: str = "spawn") -> None:
        super().__init__(max_workers)
        self.mp_context = mp_context

    def duplicate(self) -> Self:
        return type(self)(max_workers=self.max_workers, mp_context=self.mp_context)

    def _new_executor(self) -> cf.Executor:
        import multiprocessing

        return cf.ProcessPoolExecutor(
            self.max_workers or os.cpu_count() or 1,
            mp_context=multiprocessing.get_context(self.mp_context),
        )

    def _launch(
        self,
        task: Task[Any, Any],
        run: TaskRun,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any] | None,
        flow_context: FlowRunContext | None,
        future: cf.Future[State],
    ) -> None:
        from headwater.engine import process_child

        payload = process_child.prepare(task, run, args, kwargs, wait_for, flow_context, future)
        if payload is None:
            return
        child = self._pool().submit(process_child.run_in_child, payload)
        child.add_done_callback(lambda done: process_child.finish(done, run, future))

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"


__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
