"""Flows through the public API: results, states, parameters, retries, subflows, hooks."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pydantic
import pytest

from headwater import flow, get_run_logger, runtime, tags, task
from headwater.exceptions import ParameterBindError, ParameterTypeError
from headwater.states import Completed, Failed, State, StateType

from .conftest import Store


def test_direct_call_returns_result_and_records_run(store: Store) -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def pipeline(x: int) -> int:
        return double(x) + 1

    assert pipeline(20) == 41
    run = store.flow_run()
    assert run["state_type"] == "COMPLETED"
    assert run["parameters"] == {"x": 20}
    assert run["run_count"] == 1
    assert run["start_time"] <= run["end_time"]
    assert store.states(flow_run_id=run["id"], task_run_id=None) == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
    ]
    (task_run,) = store.task_runs(flow_run_id=run["id"])
    assert task_run["name"] == "double-0"
    assert task_run["state_type"] == "COMPLETED"


def test_flow_name_defaults_to_function_name_with_hyphens(store: Store) -> None:
    @flow
    def my_pipeline() -> None:
        pass

    my_pipeline()
    assert my_pipeline.name == "my-pipeline"
    with store.engine.connect() as conn:
        from headwater.store import tables

        names = [r.name for r in conn.execute(tables.flow.select())]
    assert names == ["my-pipeline"]


def test_return_state_gives_the_final_state(store: Store) -> None:
    @flow
    def pipeline() -> str:
        return "done"

    state = pipeline(return_state=True)
    assert isinstance(state, State)
    assert state.is_completed()
    assert state.result() == "done"


def test_unhandled_exception_fails_flow_and_reraises(store: Store) -> None:
    @flow
    def broken() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        broken()
    run = store.flow_run()
    assert run["state_type"] == "FAILED"
    assert "ValueError: bad input" in run["state_message"]

    state = broken(return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), ValueError)


def test_returned_state_sets_final_state(store: Store) -> None:
    @flow
    def judge(ok: bool) -> State:
        return Completed(message="fine") if ok else Failed(message="not fine")

    assert judge(True, return_state=True).message == "fine"
    failed = judge(False, return_state=True)
    assert failed.is_failed() and failed.message == "not fine"
    assert [r["state_type"] for r in store.flow_runs()] == ["COMPLETED", "FAILED"]


def test_returned_futures_decide_final_state(store: Store) -> None:
    @task
    def maybe(fail: bool) -> int:
        if fail:
            raise RuntimeError("boom")
        return 1

    @flow
    def fan_out(fail_one: bool) -> list:
        return [maybe.submit(False), maybe.submit(fail_one)]

    assert fan_out(False) == [1, 1]
    state = fan_out(True, return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."


class Window(pydantic.BaseModel):
    start: int
    end: int


def test_parameters_are_coerced_from_type_hints(store: Store) -> None:
    @flow
    def load(day: int, window: Window, names: list[str]) -> tuple:
        return day, window, names

    day, window, names = load("7", {"start": 1, "end": 2}, ("a", "b"))  # type: ignore[arg-type]
    assert day == 7
    assert window == Window(start=1, end=2)
    assert names == ["a", "b"]


def test_invalid_parameter_fails_before_running_and_names_it(store: Store) -> None:
    ran = []

    @flow
    def load(day: int) -> None:
        ran.append(day)

    with pytest.raises(ParameterTypeError, match=r"day: .*\(got 'tomorrow'\)"):
        load("tomorrow")  # type: ignore[arg-type]
    assert ran == []
    run = store.flow_run()
    assert run["state_type"] == "FAILED"
    assert [t for t, _ in store.states(flow_run_id=run["id"])] == ["PENDING", "FAILED"]


def test_validation_can_be_disabled(store: Store) -> None:
    @flow(validate_parameters=False)
    def raw(day: int) -> object:
        return day

    assert raw("7") == "7"  # type: ignore[arg-type]


def test_bad_arguments_raise_bind_error(store: Store) -> None:
    @flow
    def one(x: int) -> int:
        return x

    with pytest.raises(ParameterBindError, match="missing a required argument"):
        one()  # type: ignore[call-arg]


def test_flow_run_name_template_and_callable(store: Store) -> None:
    @flow(flow_run_name="load-{day}")
    def load(day: str) -> None:
        pass

    @flow(flow_run_name=lambda: "fixed-name")
    def other() -> None:
        pass

    load("monday")
    other()
    assert [r["name"] for r in store.flow_runs()] == ["load-monday", "fixed-name"]


def test_generated_run_names_are_readable(store: Store) -> None:
    @flow
    def anything() -> str:
        return runtime.flow_run.name

    name = anything()
    assert len(name.split("-")) == 2
    assert store.flow_run()["name"] == name


def test_flow_retries_rerun_the_body(store: Store) -> None:
    attempts = []

    @flow(retries=2, retry_delay_seconds=0)
    def flaky() -> int:
        attempts.append(runtime.flow_run.run_count)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return len(attempts)

    assert flaky() == 3
    assert attempts == [1, 2, 3]
    run = store.flow_run()
    assert run["run_count"] == 3
    names = [name for _, name in store.states(flow_run_id=run["id"])]
    assert names == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_flow_timeout_gives_timed_out_state(store: Store) -> None:
    @flow(timeout_seconds=0.2)
    def slow() -> None:
        time.sleep(5)

    started = time.monotonic()
    state = slow(return_state=True)
    assert time.monotonic() - started < 3
    assert state.is_failed() and state.name == "TimedOut"
    assert "exceeded timeout of 0.2 second(s)" in (state.message or "")
    assert store.flow_run()["state_name"] == "TimedOut"


def test_async_flow_with_async_tasks(store: Store) -> None:
    @task
    async def fetch(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    @flow
    async def gather(n: int) -> int:
        values = await asyncio.gather(*(fetch(i) for i in range(n)))
        return sum(values)

    assert asyncio.run(gather(10)) == 45
    run = store.flow_run()
    assert run["state_type"] == "COMPLETED"
    assert len(store.task_runs(flow_run_id=run["id"])) == 10


def test_async_flow_timeout(store: Store) -> None:
    @flow(timeout_seconds=0.1)
    async def slow() -> None:
        await asyncio.sleep(5)

    state = asyncio.run(slow(return_state=True))
    assert state.name == "TimedOut"


def test_concurrent_async_subflows(store: Store) -> None:
    @task
    async def step(i: int) -> int:
        return i

    @flow
    async def child(i: int) -> int:
        return sum([await step(j) for j in range(10)]) + i

    @flow
    async def parent(n: int) -> int:
        return sum(await asyncio.gather(*(child(i) for i in range(n))))

    assert asyncio.run(parent(50)) == 50 * 45 + sum(range(50))
    # By its flow: generated run names may repeat among 51 runs.
    parent_run = store.flow_run(flow_id=store.flow_runs()[0]["flow_id"], parent_flow_run_id=None)
    children = store.flow_runs(parent_flow_run_id=parent_run["id"])
    assert len(children) == 50
    assert all(c["state_type"] == "COMPLETED" for c in children)
    assert len(store.task_runs()) == 50 * 10 + 50  # steps + one task run per subflow


def test_subflow_is_linked_to_parent(store: Store) -> None:
    @flow
    def child() -> dict:
        return {
            "parent": runtime.flow_run.parent_flow_run_id,
            "root": runtime.flow_run.root_flow_run_id,
        }

    @flow
    def parent() -> tuple:
        return runtime.flow_run.id, child()

    parent_id, links = parent()
    assert links == {"parent": parent_id, "root": parent_id}
    child_run = store.flow_run(parent_flow_run_id=uuid.UUID(parent_id))
    assert child_run["root_flow_run_id"] == uuid.UUID(parent_id)
    (subflow_task_run,) = store.task_runs(flow_run_id=uuid.UUID(parent_id))
    assert subflow_task_run["id"] == child_run["parent_task_run_id"]
    assert subflow_task_run["state_type"] == "COMPLETED"


def test_failed_subflow_fails_parent_when_unhandled(store: Store) -> None:
    @flow
    def child() -> None:
        raise KeyError("missing")

    @flow
    def parent() -> None:
        child()

    assert parent(return_state=True).is_failed()
    assert sorted(r["state_type"] for r in store.flow_runs()) == ["FAILED", "FAILED"]


def test_state_hooks_receive_flow_run_and_state(store: Store) -> None:
    calls = []

    def on_completion(flow_, flow_run, state):  # type: ignore[no-untyped-def]
        calls.append(("completed", flow_.name, flow_run.name, state.type))

    @flow(on_completion=[on_completion], flow_run_name="hooked")
    def ok() -> None:
        pass

    @flow
    def bad() -> None:
        raise RuntimeError("x")

    @bad.on_failure
    def on_failure(flow_, flow_run, state):  # type: ignore[no-untyped-def]
        calls.append(("failed", flow_.name, state.message))

    @bad.on_running
    def on_running(flow_, flow_run, state):  # type: ignore[no-untyped-def]
        calls.append(("running", flow_.name))

    ok()
    bad(return_state=True)
    assert calls == [
        ("completed", "ok", "hooked", StateType.COMPLETED),
        ("running", "bad"),
        ("failed", "bad", "Flow run encountered an exception RuntimeError: x"),
    ]


def test_failing_hook_does_not_change_state(store: Store) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("hook bug")

    @flow(on_completion=[explode])
    def ok() -> int:
        return 1

    assert ok() == 1
    assert store.flow_run()["state_type"] == "COMPLETED"


def test_logs_and_prints_are_recorded_with_the_run(store: Store) -> None:
    @task(log_prints=True)
    def talk() -> None:
        print("from the task")
        get_run_logger().warning("careful")

    @flow(log_prints=True)
    def chatty() -> None:
        print("from the flow", 42)
        talk()

    chatty()
    run = store.flow_run()
    logs = store.logs(flow_run_id=run["id"])
    messages = [log["message"] for log in logs]
    assert "from the flow 42" in messages
    assert "from the task" in messages
    (task_run,) = store.task_runs()
    warning = next(log for log in logs if log["message"] == "careful")
    assert warning["level"] == 30
    assert warning["task_run_id"] == task_run["id"]
    assert messages[0].startswith("Beginning flow run")
    assert messages[-1] == "Finished in state Completed()"


def test_print_outside_log_prints_still_prints(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    @flow(log_prints=True)
    def loud() -> None:
        pass

    @flow
    def quiet() -> None:
        print("plain output")

    loud()
    quiet()
    assert "plain output" in capsys.readouterr().out
    assert all(log["message"] != "plain output" for log in store.logs())


def test_tags_context_applies_to_runs(store: Store) -> None:
    @task(tags=["own"])
    def tagged() -> list:
        return runtime.task_run.tags

    @flow
    def pipeline() -> list:
        with tags("inner"):
            return tagged()

    with tags("outer"):
        assert pipeline() == ["inner", "outer", "own"]
    assert store.flow_run()["tags"] == ["outer"]
    assert store.task_runs()[0]["tags"] == ["inner", "outer", "own"]


def test_with_options_changes_a_copy(store: Store) -> None:
    @flow(name="base")
    def base() -> str:
        return runtime.flow_run.flow_name

    renamed = base.with_options(name="renamed", retries=3)
    assert renamed() == "renamed"
    assert base() == "base"
    assert renamed.retries == 3 and base.retries == 0
    with pytest.raises(TypeError, match="unexpected option"):
        base.with_options(retires=1)


def test_runtime_outside_a_run_has_empty_values() -> None:
    assert runtime.flow_run.id is None
    assert runtime.flow_run.parameters == {}
    assert runtime.task_run.name is None


def test_runtime_flow_run_fields(store: Store) -> None:
    @flow
    def introspect(x: int = 3) -> dict:
        return {
            "name": runtime.flow_run.name,
            "flow_name": runtime.flow_run.flow_name,
            "parameters": runtime.flow_run.parameters,
            "run_count": runtime.flow_run.run_count,
            "scheduled": runtime.flow_run.scheduled_start_time,
        }

    facts = introspect()
    run = store.flow_run()
    assert facts["name"] == run["name"]
    assert facts["flow_name"] == "introspect"
    assert facts["parameters"] == {"x": 3}
    assert facts["run_count"] == 1
    assert facts["scheduled"].timestamp() == pytest.approx(run["expected_start_time"])


def test_interrupt_crashes_the_run_calls_on_crashed_and_propagates(store: Store) -> None:
    seen = []

    @task
    def interrupted() -> None:
        raise KeyboardInterrupt

    @flow(on_crashed=[lambda f, run, state: seen.append(state.message)])
    def pipeline() -> None:
        interrupted()

    with pytest.raises(KeyboardInterrupt):
        pipeline()
    assert seen == ["Flow run was interrupted by KeyboardInterrupt"]
    assert store.flow_run()["state_type"] == "CRASHED"
    assert store.task_runs()[0]["state_type"] == "CRASHED"


def test_unreachable_database_fails_the_flow_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from headwater.engine.recorder import close_recorder
    from headwater.exceptions import StoreError
    from headwater.settings import reset_settings

    ran = []
    monkeypatch.setenv("HEADWATER_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path))
    close_recorder()
    reset_settings()
    try:

        @flow
        def pipeline() -> None:
            ran.append(1)

        with pytest.raises(
            StoreError, match=r"(?s)Cannot record flow run .* HEADWATER_DATABASE_URL"
        ):
            pipeline()
        assert ran == []
    finally:
        close_recorder()
        reset_settings()
