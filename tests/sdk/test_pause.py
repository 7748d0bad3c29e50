"""pause_flow_run / resume_flow_run and send_input / receive_input, embedded (no server)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from headwater import flow, pause_flow_run, resume_flow_run, runtime, suspend_flow_run, task
from headwater.client import api
from headwater.client.api import InvalidRequest, get_client
from headwater.exceptions import CancelSignal, Conflict, FlowPauseError, MissingContextError
from headwater.input import RunInput, receive_input, send_input

from .conftest import Store


@pytest.fixture(autouse=True)
def _fresh_clients(store: Store) -> Iterator[None]:
    yield
    for client in list(api._clients.values()):
        client.close()
    api._clients.clear()


class Approval(RunInput):
    approved: bool
    note: str = ""


def _run_id(runs: list[str], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while not runs:
        assert time.monotonic() < deadline, "the flow did not start"
        time.sleep(0.01)
    return runs[0]


def _wait_paused(run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = get_client().request("GET", f"/flow_runs/{run_id}")
        if run["state_type"] == "PAUSED":
            return run
        assert time.monotonic() < deadline, f"run is {run['state_type']}, not PAUSED"
        time.sleep(0.02)


def _in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []

    def target() -> None:
        try:
            results.append(function())
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, results


def test_a_paused_run_waits_until_resumed_from_another_thread(store: Store) -> None:
    runs: list[str] = []
    steps: list[str] = []

    @task
    def step(name: str) -> str:
        steps.append(name)
        return name

    @flow
    def gated() -> str:
        runs.append(runtime.flow_run.id)
        step("before")
        pause_flow_run(timeout=30, poll_interval=10)
        return step("after")

    def resume_when_paused() -> dict[str, Any]:
        run_id = _run_id(runs)
        paused = _wait_paused(run_id)
        time.sleep(0.2)
        assert steps == ["before"]  # the flow waits while paused
        resume_flow_run(run_id)
        return paused

    thread, results = _in_thread(resume_when_paused)
    started = time.monotonic()
    assert gated() == "after"
    thread.join()
    paused = results[0]
    assert paused["state_name"] == "Paused"
    assert "headwater flow-run resume" in paused["state_message"]
    # The long poll returns as soon as the run is resumed, not after poll_interval.
    assert time.monotonic() - started < 8.0
    run = store.flow_run(id=uuid.UUID(runs[0]))
    assert run["state_type"] == "COMPLETED"
    assert run["run_count"] == 1  # resumed in the same attempt
    assert ("PAUSED", "Paused") in store.states(flow_run_id=run["id"], task_run_id=None)


def test_typed_input_is_validated_and_returned(store: Store) -> None:
    runs: list[str] = []

    @flow
    def release() -> Approval:
        runs.append(runtime.flow_run.id)
        approval: Approval = pause_flow_run(wait_for_input=Approval, timeout=30, poll_interval=1)
        return approval

    def resume_when_paused() -> list[str]:
        run_id = _run_id(runs)
        _wait_paused(run_id)
        schema = get_client().request("GET", f"/flow_runs/{run_id}/input_schema")
        assert schema["properties"]["approved"]["type"] == "boolean"
        assert schema["required"] == ["approved"]
        errors = []
        for bad in (None, {"approved": "perhaps"}, {"approved": True, "colour": "red"}):
            with pytest.raises(InvalidRequest) as caught:
                resume_flow_run(run_id, run_input=bad)
            errors.append(str(caught.value))
        assert get_client().request("GET", f"/flow_runs/{run_id}")["state_type"] == "PAUSED"
        resume_flow_run(run_id, run_input=Approval(approved=True, note="ship it"))
        return errors

    thread, results = _in_thread(resume_when_paused)
    approval = release()
    thread.join()
    missing, wrong_type, unknown = results[0]
    assert "waits for input (fields: approved, note)" in missing
    assert "'approved'" in wrong_type and "boolean" in wrong_type
    assert "colour" in unknown
    assert isinstance(approval, Approval)
    assert approval == Approval(approved=True, note="ship it")


def test_a_plain_type_and_initial_data(store: Store) -> None:
    runs: list[str] = []
    Defaults = Approval.with_initial_data(note="looks good", description="Ship **v2**?")

    @flow
    def ask() -> tuple[int, Approval]:
        runs.append(runtime.flow_run.id)
        count = pause_flow_run(wait_for_input=int, timeout=30, poll_interval=1, key="count")
        approval = pause_flow_run(wait_for_input=Defaults, timeout=30, poll_interval=1)
        return count, approval

    def resume_twice() -> dict[str, Any]:
        run_id = _run_id(runs)
        _wait_paused(run_id)
        resume_flow_run(run_id, run_input={"value": 3})
        time.sleep(0.1)
        _wait_paused(run_id)
        info: dict[str, Any] = get_client().request("GET", f"/flow_runs/{run_id}/pause")
        resume_flow_run(run_id, run_input={"approved": False})
        return info

    thread, results = _in_thread(resume_twice)
    count, approval = ask()
    thread.join()
    info = results[0]
    assert count == 3
    assert approval.approved is False and approval.note == "looks good"
    assert info["description"] == "Ship **v2**?"
    assert info["input_schema"]["properties"]["note"]["default"] == "looks good"
    assert info["key"] == "0"  # unnamed pauses are numbered per run


def test_a_pause_that_times_out_fails_the_run(store: Store) -> None:
    @flow
    def forgotten() -> str:
        pause_flow_run(timeout=0.5, poll_interval=0.2)
        return "never"

    started = time.monotonic()
    state = forgotten(return_state=True)
    assert state.is_failed()
    assert "not resumed within 0.5 second(s)" in (state.message or "")
    assert time.monotonic() - started < 5
    run = store.flow_run()
    assert run["state_type"] == "FAILED"
    with pytest.raises(Conflict, match="FAILED \\(a final state\\), not PAUSED"):
        resume_flow_run(run["id"])


def test_cancelling_a_paused_run_ends_it(store: Store) -> None:
    runs: list[str] = []

    @flow
    def waiting() -> None:
        runs.append(runtime.flow_run.id)
        pause_flow_run(timeout=30, poll_interval=1)

    def cancel_when_paused() -> None:
        run_id = _run_id(runs)
        _wait_paused(run_id)
        get_client().request("POST", f"/flow_runs/{run_id}/cancel")

    thread, _ = _in_thread(cancel_when_paused)
    with pytest.raises(CancelSignal):  # as for any run cancelled from outside
        waiting()
    thread.join()
    assert store.flow_run()["state_type"] == "CANCELLED"


def test_async_flows_await_the_pause(store: Store) -> None:
    runs: list[str] = []

    @flow
    async def gated() -> bool:
        runs.append(runtime.flow_run.id)
        approval: Approval = await pause_flow_run(Approval, timeout=30, poll_interval=1)
        return approval.approved

    def resume_when_paused() -> None:
        run_id = _run_id(runs)
        _wait_paused(run_id)
        resume_flow_run(run_id, {"approved": True})

    thread, _ = _in_thread(resume_when_paused)
    assert asyncio.run(gated()) is True
    thread.join()


def test_pausing_in_the_wrong_place_says_where_to_pause(store: Store) -> None:
    with pytest.raises(MissingContextError, match="inside a @flow function"):
        pause_flow_run()

    @task
    def inner() -> None:
        pause_flow_run()

    @flow
    def in_task() -> None:
        inner()

    with pytest.raises(FlowPauseError, match="tasks cannot pause"):
        in_task()

    @flow
    def local() -> None:
        suspend_flow_run()

    with pytest.raises(FlowPauseError, match="needs a run of a deployment"):
        local()


def test_resuming_a_run_that_is_not_paused_names_its_state(store: Store) -> None:
    @flow
    def plain() -> int:
        return 1

    plain()
    run_id = store.flow_run()["id"]
    with pytest.raises(Conflict, match="is COMPLETED \\(a final state\\), not PAUSED"):
        resume_flow_run(run_id)


class Greeting(RunInput):
    text: str


def test_inputs_sent_to_a_run_are_received_once_each_in_order(store: Store) -> None:
    runs: list[str] = []

    @flow
    def listener() -> list[tuple[str, str | None]]:
        runs.append(runtime.flow_run.id)
        received = []
        for greeting in receive_input(Greeting, timeout=2, poll_interval=1):
            received.append((greeting.text, greeting.metadata.sender))
            if len(received) == 2:
                break
        return received

    @flow
    def talker(to: str) -> None:
        send_input(Greeting(text="hello"), flow_run_id=to)

    def send() -> str:
        run_id = _run_id(runs)
        talker(run_id)
        send_input(Greeting(text="again"), flow_run_id=run_id, sender="tests")
        return run_id

    thread, results = _in_thread(send)
    received = listener()
    thread.join()
    assert results[0] == runs[0]
    talker_run = store.flow_runs()[1]
    assert received == [("hello", f"headwater.flow-run.{talker_run['id']}"), ("again", "tests")]


def test_receive_input_ends_after_its_timeout(store: Store) -> None:
    @flow
    def lonely() -> list[int]:
        send_input(5, flow_run_id=runtime.flow_run.id)
        values = list(receive_input(int, timeout=0.3, poll_interval=0.1))
        with pytest.raises(TimeoutError, match=r"within 0\.3 second"):
            next(
                receive_input(
                    int,
                    timeout=0.3,
                    exclude_keys=set(),
                    raise_timeout_error=True,
                    key_prefix="nothing",
                )
            )
        return values

    assert lonely() == [5]
