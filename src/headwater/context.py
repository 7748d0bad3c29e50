"""Run context: what is running now, reachable from anywhere in the run's code.

`get_run_context()` returns the innermost `TaskRunContext` or `FlowRunContext`.
Contexts live in context variables, so they follow threads started by task
runners (which copy the context) and asyncio tasks.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from headwater.exceptions import MissingContextError

if TYPE_CHECKING:
    from headwater.engine.runs import FlowRun, TaskRun
    from headwater.flows import Flow
    from headwater.task_runners import TaskRunner
    from headwater.tasks import Task


class FlowRunContext:
    """The flow run executing now: its run object, flow, task runner and bookkeeping."""

    __slots__ = ("counters", "flow", "flow_run", "futures", "log_prints", "task_runner")

    def __init__(
        self, flow: Flow[Any, Any], flow_run: FlowRun, task_runner: TaskRunner, log_prints: bool
    ) -> None:
        self.flow = flow
        self.flow_run = flow_run
        self.task_runner = task_runner
        self.log_prints = log_prints
        #: per task key, how many runs of it this flow run has created (dynamic keys)
        self.counters: dict[str, int] = {}
        #: futures submitted in this flow run, waited for when the flow returns
        self.futures: list[Any] = []

    def next_dynamic_key(self, task_key: str) -> int:
        # dict operations are atomic under the GIL; tasks submitted from several
        # threads at once may skip a number but never reuse one.
        number = self.counters.get(task_key, 0)
        self.counters[task_key] = number + 1
        return number


class TaskRunContext:
    """The task run executing now."""

    __slots__ = ("flow_run_context", "log_prints", "task", "task_run")

    def __init__(
        self,
        task: Task[Any, Any],
        task_run: TaskRun,
        flow_run_context: FlowRunContext | None,
        log_prints: bool,
    ) -> None:
        self.task = task
        self.task_run = task_run
        self.flow_run_context = flow_run_context
        self.log_prints = log_prints

    @property
    def flow_run(self) -> FlowRun | None:
        return self.flow_run_context.flow_run if self.flow_run_context else None


flow_run_context: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "headwater_flow_run", default=None
)
task_run_context: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "headwater_task_run", default=None
)
_tags: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "headwater_tags", default=frozenset()
)


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The innermost run context; raises `MissingContextError` outside any run."""
    task_context = task_run_context.get()
    if task_context is not None:
        return task_context
    flow_context = flow_run_context.get()
    if flow_context is not None:
        return flow_context
    raise MissingContextError(
        "No run context: get_run_context() must be called inside a @flow or @task run."
    )


def current_tags() -> frozenset[str]:
    return _tags.get()


@contextlib.contextmanager
def tags(*new_tags: str) -> Iterator[frozenset[str]]:
    """Add tags to every flow run and task run created inside the block.

    Example:
        with tags("nightly", "eu"):
            etl()
    """
    for tag in new_tags:
        if not isinstance(tag, str):
            raise TypeError(f"Tags must be strings, got {tag!r} ({type(tag).__name__}).")
    merged = _tags.get() | frozenset(new_tags)
    token = _tags.set(merged)
    try:
        yield merged
    finally:
        _tags.reset(token)
