"""Futures returned by `Task.submit()` and `Task.map()`, and helpers to wait on them.

They follow `concurrent.futures` conventions: `wait(futures, timeout)` returns
`(done, not_done)` and `as_completed(futures)` yields each as it finishes,
whichever task runner produced them.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from headwater.core.states import State

if TYPE_CHECKING:
    from headwater.engine.runs import TaskRun

R = TypeVar("R")


class HeadwaterFuture(Generic[R]):
    """The eventual outcome of a submitted task run."""

    __slots__ = ("_future", "_task_run")

    def __init__(self, task_run: TaskRun, future: cf.Future[State]) -> None:
        self._task_run = task_run
        self._future = future

    @property
    def task_run_id(self) -> uuid.UUID:
        return self._task_run.id

    @property
    def state(self) -> State:
        """The final state once done, else the run's current state (Pending, Running...)."""
        if self._future.done():
            return self._future.result()
        state: State = self._task_run.state
        return state

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run is final, or `timeout` seconds pass."""
        try:
            self._future.result(timeout)
        except cf.TimeoutError:
            return

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value; re-raises its exception if it failed.

        Raises `TimeoutError` if the run is not final within `timeout` seconds.
        """
        try:
            state = self._future.result(timeout)
        except cf.TimeoutError:
            raise TimeoutError(
                f"Task run {self._task_run.name!r} did not finish within {timeout} s."
            ) from None
        value: R = state.result(raise_on_failure=raise_on_failure)
        return value

    def add_done_callback(self, fn: Callable[[HeadwaterFuture[R]], Any]) -> None:
        self._future.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        return f"HeadwaterFuture(task_run={self._task_run.name!r}, state={self.state!r})"


class HeadwaterFutureList(list[HeadwaterFuture[R]]):
    """The futures of a `.map()` call, with helpers that apply to all of them."""

    def wait(self, timeout: float | None = None) -> None:
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        deadline = None if timeout is None else time.monotonic() + timeout
        results = []
        for future in self:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            results.append(future.result(remaining, raise_on_failure))
        return results


class DoneAndNotDoneFutures(NamedTuple, Generic[R]):
    done: set[HeadwaterFuture[R]]
    not_done: set[HeadwaterFuture[R]]


def wait(
    futures: Iterable[HeadwaterFuture[R]], timeout: float | None = None
) -> DoneAndNotDoneFutures[R]:
    """Wait until all `futures` are final or `timeout` seconds pass.

    Example:
        done, not_done = wait([a, b], timeout=10)
    """
    futures = list(futures)
    condition = threading.Condition()
    pending = {id(f) for f in futures if not f.done()}

    def finished(future: HeadwaterFuture[R]) -> None:
        with condition:
            pending.discard(id(future))
            condition.notify_all()

    for future in futures:
        # Every pending one, even if it finished since: a callback added to a finished
        # future runs at once, so no completion between the two checks is missed.
        if id(future) in pending:
            future.add_done_callback(finished)
    with condition:
        condition.wait_for(lambda: not pending, timeout)
    done = {f for f in futures if f.done()}
    return DoneAndNotDoneFutures(done, {f for f in futures if f not in done})


def as_completed(
    futures: Iterable[HeadwaterFuture[R]], timeout: float | None = None
) -> Iterator[HeadwaterFuture[R]]:
    """Yield each future as it becomes final; `TimeoutError` if `timeout` passes first."""
    futures = list(futures)
    finished: list[HeadwaterFuture[R]] = []
    condition = threading.Condition()

    def on_done(future: HeadwaterFuture[R]) -> None:
        with condition:
            finished.append(future)
            condition.notify_all()

    for future in futures:
        future.add_done_callback(on_done)
    deadline = None if timeout is None else time.monotonic() + timeout
    yielded = 0
    while yielded < len(futures):
        with condition:
            while len(finished) == yielded:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(
                        f"{len(futures) - yielded} of {len(futures)} futures did not finish "
                        f"within {timeout} s."
                    )
                condition.wait(remaining)
            batch = finished[yielded:]
        for future in batch:
            yielded += 1
            yield future
