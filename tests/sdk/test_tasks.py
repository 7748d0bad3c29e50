"""Tasks through the public API: calls, retries, timeouts, submit/map, dependencies."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from headwater import allow_failure, flow, quote, runtime, task, unmapped
from headwater.exceptions import MappingLengthMismatch, MappingMissingIterable
from headwater.futures import as_completed, wait
from headwater.states import StateType
from headwater.tasks import exponential_backoff

from .conftest import Store


def test_task_outside_a_flow_is_recorded_without_flow_run(store: Store) -> None:
    @task
    def alone(x: int) -> int:
        return x * 3

    assert alone(3) == 9
    (run,) = store.task_runs()
    assert run["flow_run_id"] is None
    assert run["state_type"] == "COMPLETED"
    assert store.states(task_run_id=run["id"]) == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
    ]


def test_task_exception_propagates_from_direct_call(store: Store) -> None:
    @task
    def boom() -> None:
        raise LookupError("nope")

    @flow
    def pipeline() -> str:
        try:
            boom()
        except LookupError as exc:
            return f"caught {exc}"
        return "not raised"

    assert pipeline() == "caught nope"
    (run,) = store.task_runs()
    assert run["state_type"] == "FAILED"
    assert run["state_message"] == "Task run encountered an exception LookupError: nope"


def test_return_state(store: Store) -> None:
    @task
    def boom() -> None:
        raise LookupError("nope")

    @flow
    def pipeline() -> bool:
        state = boom(return_state=True)
        return state.is_failed()

    assert pipeline() is True


def test_retries_with_delay_list(store: Store) -> None:
    calls: list[float] = []

    @task(retries=2, retry_delay_seconds=[0.1, 0.2])
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("flaky")
        return f"ok after {runtime.task_run.run_count}"

    @flow
    def pipeline() -> str:
        return flaky()

    assert pipeline() == "ok after 3"
    assert calls[1] - calls[0] >= 0.1
    assert calls[2] - calls[1] >= 0.2
    (run,) = store.task_runs()
    assert run["run_count"] == 3
    assert [name for _, name in store.states(task_run_id=run["id"])] == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_retries_exhausted_fail(store: Store) -> None:
    @task(retries=1, retry_delay_seconds=0)
    def always() -> None:
        raise ValueError("always")

    @flow
    def pipeline() -> None:
        always()

    assert pipeline(return_state=True).is_failed()
    (run,) = store.task_runs()
    assert (run["state_type"], run["run_count"]) == ("FAILED", 2)


def test_retry_condition_stops_retries(store: Store) -> None:
    seen = []

    def only_connection_errors(task_, task_run, state) -> bool:  # type: ignore[no-untyped-def]
        seen.append((task_.name, task_run.name, state.type))
        return isinstance(state.result(raise_on_failure=False), ConnectionError)

    @task(retries=5, retry_condition_fn=only_connection_errors)
    def fails(kind: str) -> None:
        raise ConnectionError() if kind == "net" else ValueError()

    @flow
    def pipeline() -> None:
        fails("value", return_state=True)

    pipeline()
    (run,) = store.task_runs()
    assert run["run_count"] == 1
    assert seen == [("fails", "fails-0", StateType.FAILED)]


def test_exponential_backoff_delays() -> None:
    assert exponential_backoff(backoff_factor=2)(4) == [2, 4, 8, 16]
    with pytest.raises(ValueError, match="backoff_factor must be >= 0"):
        exponential_backoff(-1)


def test_retry_jitter_only_adds(store: Store) -> None:
    calls: list[float] = []

    @task(retries=1, retry_delay_seconds=0.1, retry_jitter_factor=1.0)
    def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ConnectionError()

    flaky()
    assert 0.1 <= calls[1] - calls[0] < 1.0


def test_task_timeout_in_flow_thread_and_in_pool(store: Store) -> None:
    @task(timeout_seconds=0.2)
    def slow_sleep() -> None:
        time.sleep(3)

    @task(timeout_seconds=0.2)
    def busy() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            pass

    @flow
    def pipeline() -> list:
        direct = slow_sleep(return_state=True)
        pooled = busy.submit()
        pooled.wait()
        return [(direct.name, direct.message), (pooled.state.name, pooled.state.message)]

    started = time.monotonic()
    direct, pooled = pipeline()
    assert time.monotonic() - started < 2.5
    assert direct == ("TimedOut", "Task run exceeded timeout of 0.2 second(s)")
    assert pooled == direct
    assert sorted(r["state_name"] for r in store.task_runs()) == ["TimedOut", "TimedOut"]


def test_async_task_timeout(store: Store) -> None:
    @task(timeout_seconds=0.1)
    async def slow() -> None:
        await asyncio.sleep(3)

    @flow
    async def pipeline() -> str:
        return (await slow(return_state=True)).name

    assert asyncio.run(pipeline()) == "TimedOut"


def test_submit_returns_future_with_state_and_result(store: Store) -> None:
    gate = threading.Event()

    @task
    def waits() -> str:
        gate.wait(5)
        return "released"

    @flow
    def pipeline() -> tuple:
        future = waits.submit()
        before = future.state.type
        gate.set()
        return before, future.result(timeout=5), future.state.type

    before, result, after = pipeline()
    assert before in (StateType.PENDING, StateType.RUNNING)
    assert (result, after) == ("released", StateType.COMPLETED)


def test_future_result_reraises_task_exception(store: Store) -> None:
    @task
    def boom() -> None:
        raise KeyError("k")

    @flow
    def pipeline() -> str:
        future = boom.submit()
        with pytest.raises(KeyError):
            future.result()
        return type(future.result(raise_on_failure=False)).__name__

    assert pipeline() == "KeyError"


def test_map_with_unmapped_and_keyword_iterables(store: Store) -> None:
    @task
    def scale(x: int, factor: int, offset: int = 0) -> int:
        return x * factor + offset

    @flow
    def pipeline() -> list:
        futures = scale.map([1, 2, 3], unmapped(10), offset=[0, 1, 2])
        return futures.result()

    assert pipeline() == [10, 21, 32]
    names = sorted(r["name"] for r in store.task_runs())
    assert names == ["scale-0", "scale-1", "scale-2"]


def test_map_over_a_future_result_and_unmapped_list(store: Store) -> None:
    @task
    def numbers() -> list:
        return [1, 2, 3]

    @task
    def total(x: int, extra: list) -> int:
        return x + sum(extra)

    @flow
    def pipeline() -> list:
        return total.map(numbers.submit(), unmapped([10, 10])).result()

    assert pipeline() == [21, 22, 23]


def test_map_errors_name_the_problem(store: Store) -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def mismatched() -> None:
        add.map([1, 2], [1, 2, 3])

    @flow
    def nothing_to_map() -> None:
        add.map(1, 2)

    with pytest.raises(MappingLengthMismatch, match="argument 0 has 2, argument 1 has 3"):
        mismatched()
    with pytest.raises(MappingMissingIterable, match="no iterable argument"):
        nothing_to_map()


def test_futures_as_arguments_resolve_and_record_dependencies(store: Store) -> None:
    @task
    def source() -> int:
        return 5

    @task
    def plus(x: int, y: int) -> int:
        return x + y

    @flow
    def pipeline() -> int:
        a = source.submit()
        b = plus.submit(a, 1)
        return plus(b, y=a)

    assert pipeline() == 11
    runs = {r["name"]: r for r in store.task_runs()}
    source_id = str(runs["source-0"]["id"])
    assert runs["plus-0"]["task_inputs"] == {"0": [source_id]}
    assert runs["plus-1"]["task_inputs"] == {
        "0": [str(runs["plus-0"]["id"])],
        "y": [source_id],
    }


def test_wait_for_orders_without_passing_data(store: Store) -> None:
    order = []

    @task
    def first() -> None:
        time.sleep(0.1)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow
    def pipeline() -> None:
        a = first.submit()
        second.submit(wait_for=[a]).wait()

    pipeline()
    assert order == ["first", "second"]


def test_upstream_failure_blocks_downstream_unless_allowed(store: Store) -> None:
    ran = []

    @task
    def broken() -> int:
        raise RuntimeError("upstream broke")

    @task
    def downstream(value: object) -> None:
        ran.append(value)

    @flow
    def pipeline() -> tuple:
        upstream = broken.submit()
        blocked = downstream.submit(upstream)
        allowed = downstream.submit(allow_failure(upstream))
        blocked.wait()
        allowed.wait()
        return blocked.state.name, blocked.state.message, allowed.state.name

    blocked_name, blocked_message, allowed_name = pipeline()
    assert blocked_name == "NotReady" and "wrap it in allow_failure" in blocked_message
    assert allowed_name == "Completed"
    assert len(ran) == 1 and isinstance(ran[0], RuntimeError)


def test_quote_passes_futures_unresolved(store: Store) -> None:
    @task
    def make() -> int:
        return 1

    @task
    def inspect_it(value: object) -> str:
        return type(value).__name__

    @flow
    def pipeline() -> str:
        future = make.submit()
        future.wait()
        return inspect_it(quote(future))

    assert pipeline() == "HeadwaterFuture"


def test_wait_and_as_completed(store: Store) -> None:
    @task
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def pipeline() -> tuple:
        futures = nap.map([0.3, 0.01, 0.1])
        done, not_done = wait(futures, timeout=0.05)
        early = {f.result() for f in done}
        ordered = [f.result() for f in as_completed(futures)]
        return early, not_done, ordered

    early, not_done, ordered = pipeline()
    assert early == {0.01}
    assert len(not_done) == 2
    assert ordered == [0.01, 0.1, 0.3]


def test_as_completed_timeout(store: Store) -> None:
    @task
    def nap() -> None:
        time.sleep(1)

    @flow
    def pipeline() -> None:
        with pytest.raises(TimeoutError, match=r"did not finish within 0\.05 s"):
            list(as_completed([nap.submit()], timeout=0.05))

    pipeline()


def test_task_run_name_template_and_hooks(store: Store) -> None:
    events = []

    @task(task_run_name="load-{table}")
    def load(table: str) -> None:
        if table == "bad":
            raise ValueError(table)

    @load.on_completion
    def done(task_, task_run, state):  # type: ignore[no-untyped-def]
        events.append(("completed", task_run.name))

    @load.on_failure
    def failed(task_, task_run, state):  # type: ignore[no-untyped-def]
        events.append(("failed", task_run.name, state.message))

    @flow
    def pipeline() -> None:
        load("users")
        load("bad", return_state=True)

    pipeline()
    assert events == [
        ("completed", "load-users"),
        ("failed", "load-bad", "Task run encountered an exception ValueError: bad"),
    ]


def test_async_task_submitted_from_sync_flow(store: Store) -> None:
    @task
    async def fetch(i: int) -> int:
        await asyncio.sleep(0.01)
        return i * 2

    @flow
    def pipeline() -> list:
        return fetch.map(range(5)).result()

    assert pipeline() == [0, 2, 4, 6, 8]


def test_runtime_task_run_fields(store: Store) -> None:
    @task(tags=["t"])
    def introspect(x: int, y: int = 2) -> dict:
        return {
            "name": runtime.task_run.name,
            "task_name": runtime.task_run.task_name,
            "parameters": runtime.task_run.parameters,
            "tags": runtime.task_run.tags,
            "run_count": runtime.task_run.run_count,
        }

    @flow
    def pipeline() -> dict:
        return introspect(1)

    assert pipeline() == {
        "name": "introspect-0",
        "task_name": "introspect",
        "parameters": {"x": 1, "y": 2},
        "tags": ["t"],
        "run_count": 1,
    }


def test_with_options_on_task(store: Store) -> None:
    @task(retries=0)
    def base() -> str:
        return runtime.task_run.task_name

    assert base.with_options(name="other")() == "other"
    with pytest.raises(TypeError, match="unexpected option"):
        base.with_options(nonsense=1)


def test_misspelt_options_are_refused_with_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"@task got unexpected option\(s\) \['retires'\]"):
        task(retires=3)(lambda: None)
    with pytest.raises(TypeError, match=r"@flow got unexpected option\(s\).*persist_result"):
        flow(persist_results=True)(lambda: None)
