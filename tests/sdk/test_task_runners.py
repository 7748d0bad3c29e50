"""Task runners: the bounded thread pool and the process pool behind one interface."""

from __future__ import annotations

import os
import threading
import time

import pytest

from headwater import flow, get_run_logger, task
from headwater.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from .conftest import Store


@task
def square(x: int) -> int:
    get_run_logger().info("squaring %d in %d", x, os.getpid())
    return x * x


@task
def which_process() -> int:
    return os.getpid()


@task
def unpicklable_result() -> object:
    return threading.Lock()


def test_thread_pool_is_bounded(store: Store) -> None:
    active = []
    peak = []
    lock = threading.Lock()

    @task
    def busy(_: int) -> None:
        with lock:
            active.append(1)
            peak.append(len(active))
        time.sleep(0.05)
        with lock:
            active.pop()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def pipeline() -> None:
        busy.map(range(12)).wait()

    pipeline()
    assert max(peak) == 3
    assert len(store.task_runs()) == 12


def test_bad_pool_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_workers must be >= 1, got 0"):
        ThreadPoolTaskRunner(max_workers=0)


def test_process_pool_runs_tasks_in_other_processes(store: Store) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def pipeline() -> tuple:
        squares = square.map(range(6)).result()
        pids = {which_process.submit().result() for _ in range(4)}
        return squares, pids

    squares, pids = pipeline()
    assert squares == [0, 1, 4, 9, 16, 25]
    assert os.getpid() not in pids
    run = store.flow_runs()[0]
    tasks = store.task_runs(flow_run_id=run["id"])
    assert len(tasks) == 10
    assert all(t["state_type"] == "COMPLETED" for t in tasks)
    task_logs = [log for log in store.logs() if log["message"].startswith("squaring")]
    assert len(task_logs) == 6


def test_process_pool_reports_unpicklable_result_clearly(store: Store) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pipeline() -> str:
        state = unpicklable_result.submit(return_state=True)
        return state.message

    assert "cannot be sent back" in pipeline()
    (task_run,) = store.task_runs()
    assert task_run["state_type"] == "FAILED"
