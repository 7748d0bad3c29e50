"""`headwater flow-run inspect`: details, task runs, state history and id resolution."""

from __future__ import annotations

import json
import uuid

from .helpers import BASE, StoreBuilder, assert_one_line_error, invoke


def test_inspect_shows_details_task_runs_and_state_history(store: StoreBuilder) -> None:
    parent = store.flow_run("nightly", name="calm-heron")
    run = store.flow_run(
        "etl",
        name="crimson-fox",
        state="FAILED",
        message="ValueError: bad row 7",
        parameters={"day": "2024-05-01", "limit": 10},
        tags=["prod", "etl"],
        parent=parent.id,
        start=BASE,
        duration=75,
    )
    store.task_run(run.id, "extract-0", start=BASE + 1, duration=2)
    store.task_run(run.id, "load-0", start=BASE + 3, state="FAILED", run_count=3)

    result = invoke("flow-run", "inspect", str(run.id)[:13])

    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        "crimson-fox",
        str(run.id),
        "etl",
        "Failed  ValueError: bad row 7",
        '{"day": "2024-05-01", "limit": 10}',
        "prod, etl",
        f"{parent.id} (calm-heron, flow nightly)",
        "1m 15s",
        "Task runs: 2 (1 Completed, 1 Failed)",
    ):
        assert expected in out, expected
    task_lines = out[out.index("Task runs:") : out.index("State history")].splitlines()
    assert task_lines[1].split() == ["Name", "State", "Start", "Duration", "Runs"]
    assert task_lines[2].split()[:2] == ["extract-0", "Completed"]
    assert task_lines[2].split()[-2:] == ["2.0s", "1"]
    assert task_lines[3].split()[:2] == ["load-0", "Failed"]
    assert task_lines[3].split()[-1] == "3"
    history = out[out.index("State history") :].splitlines()
    assert [line.split()[2] for line in history[2:5]] == ["Pending", "Running", "Failed"]
    assert "ValueError: bad row 7" in history[4]


def test_inspect_json(store: StoreBuilder) -> None:
    run = store.flow_run("etl", name="crimson-fox")
    task = store.task_run(run.id, "extract-0")

    result = invoke("flow-run", "inspect", str(run.id), "--json")

    document = json.loads(result.stdout)
    assert document["id"] == str(run.id)
    assert [t["id"] for t in document["task_runs"]] == [str(task)]
    assert [s["type"] for s in document["state_history"]] == ["PENDING", "RUNNING", "COMPLETED"]


def test_inspect_accepts_prefix_without_dashes_in_any_case(store: StoreBuilder) -> None:
    run = store.flow_run(run_id=uuid.UUID("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"), name="target")
    store.flow_run(run_id=uuid.UUID("0193a1b2-c3d4-7f00-8000-000000000000"), name="sibling")

    result = invoke("flow-run", "inspect", "0193A1B2C3D47E")

    assert result.exit_code == 0, result.output
    assert str(run.id) in result.stdout and "sibling" not in result.stdout


def test_ambiguous_prefix_names_the_candidates(store: StoreBuilder) -> None:
    one = store.flow_run(run_id=uuid.UUID("0193a1b2-0000-7000-8000-000000000001"), name="one")
    two = store.flow_run(run_id=uuid.UUID("0193a1b2-0000-7000-8000-000000000002"), name="two")

    result = invoke("flow-run", "inspect", "0193a1b2")

    assert_one_line_error(
        result, "ambiguous", f"{one.id} (one)", f"{two.id} (two)", "more characters"
    )


def test_missing_id_points_at_flow_run_ls(store: StoreBuilder) -> None:
    store.flow_run()

    result = invoke("flow-run", "inspect", "ffffffff")

    assert_one_line_error(result, "No flow run found with id 'ffffffff'", "`headwater flow-run ls`")


def test_malformed_id_is_one_line(store: StoreBuilder) -> None:
    result = invoke("flow-run", "inspect", "crimson-fox")

    assert_one_line_error(result, "'crimson-fox' is not an id or id prefix")
