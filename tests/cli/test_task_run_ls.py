"""`headwater task-run ls`."""

from __future__ import annotations

import json

from headwater.cli.output import short_id

from .helpers import BASE, StoreBuilder, assert_one_line_error, invoke


def test_lists_latest_task_runs_with_their_flow_run(store: StoreBuilder) -> None:
    run = store.flow_run(name="crimson-fox")
    store.task_run(run.id, "extract-0", start=BASE)
    load = store.task_run(run.id, "load-0", start=BASE + 1, state="FAILED", run_count=3)

    result = invoke("task-run", "ls")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "Name", "Flow", "run", "State", "Start", "Duration", "Runs"]
    first = lines[1].split()
    assert first[:4] == [short_id(load), "load-0", "crimson-fox", "Failed"]
    assert first[-2:] == ["0.500s", "3"]
    assert lines[2].split()[1] == "extract-0"
    assert "2 of 2 task runs (1 Completed, 1 Failed)." in result.stdout


def test_filter_by_flow_run_prefix_and_state_in_run_order(store: StoreBuilder) -> None:
    run = store.flow_run()
    other = store.flow_run()
    store.task_run(run.id, "a-0", start=BASE, state="FAILED")
    store.task_run(run.id, "b-0", start=BASE + 1)
    store.task_run(run.id, "c-0", start=BASE + 2, state="FAILED")
    store.task_run(other.id, "elsewhere-0", start=BASE + 3, state="FAILED")

    result = invoke("task-run", "ls", "--flow-run", str(run.id)[:18], "--state", "FAILED", "--json")

    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [r["name"] for r in runs] == ["a-0", "c-0"]
    assert {r["flow_run_id"] for r in runs} == {str(run.id)}


def test_limit_and_empty(store: StoreBuilder) -> None:
    assert invoke("task-run", "ls").stdout.strip() == "No task runs found."
    run = store.flow_run()
    for i in range(5):
        store.task_run(run.id, f"t-{i}", start=BASE + i)

    result = invoke("task-run", "ls", "--limit", "2", "--json")

    assert [r["name"] for r in json.loads(result.stdout)] == ["t-4", "t-3"]


def test_unknown_flow_run_and_state_are_one_line(store: StoreBuilder) -> None:
    assert_one_line_error(
        invoke("task-run", "ls", "--flow-run", "abcdef"), "No flow run found with id 'abcdef'"
    )
    assert_one_line_error(invoke("task-run", "ls", "--state", "DONE"), "Unknown state 'DONE'")
