"""`headwater flow-run ls`: the table, filters, JSON output and bad options."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

from headwater.cli.output import local_time, short_id

from .helpers import BASE, StoreBuilder, assert_one_line_error, invoke


def test_table_shows_runs_latest_first_with_state_and_duration(store: StoreBuilder) -> None:
    etl = store.flow_run("etl", name="crimson-fox", start=BASE, duration=2.5)
    report = store.flow_run("report", name="amber-owl", state="FAILED", start=BASE + 60)

    result = invoke("flow-run", "ls")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "Name", "Flow", "State", "Start", "Duration"]
    assert lines[1].split() == [
        short_id(report.id),
        "amber-owl",
        "report",
        "Failed",
        *local_time(BASE + 60).split(),
        "2.5s",
    ]
    assert lines[2].split()[:4] == [short_id(etl.id), "crimson-fox", "etl", "Completed"]
    assert "2 of 2 flow runs (1 Completed, 1 Failed)." in result.stdout


def test_filter_by_flow_and_state(store: StoreBuilder) -> None:
    store.flow_run("etl", name="etl-ok")
    store.flow_run("etl", name="etl-failed", state="FAILED")
    store.flow_run("etl", name="etl-crashed", state="CRASHED")
    store.flow_run("report", name="report-failed", state="FAILED")

    result = invoke("flow-run", "ls", "--flow", "etl", "--state", "failed", "-s", "CRASHED")

    assert result.exit_code == 0, result.output
    assert "etl-failed" in result.stdout and "etl-crashed" in result.stdout
    assert "etl-ok" not in result.stdout and "report-failed" not in result.stdout
    comma = invoke("flow-run", "ls", "--flow", "etl", "--state", "failed,crashed", "--json")
    assert {run["name"] for run in json.loads(comma.stdout)} == {"etl-failed", "etl-crashed"}


def test_filter_by_relative_and_iso_time(store: StoreBuilder) -> None:
    now = time.time()
    store.flow_run(name="three-days-ago", start=now - 3 * 86400)
    store.flow_run(name="two-hours-ago", start=now - 7200)
    store.flow_run(name="ten-minutes-ago", start=now - 600)

    def names(*args: str) -> list[str]:
        result = invoke("flow-run", "ls", "--json", *args)
        assert result.exit_code == 0, result.output
        return [run["name"] for run in json.loads(result.stdout)]

    assert names("--since", "1h") == ["ten-minutes-ago"]
    assert names("--since", "1d", "--until", "30m") == ["two-hours-ago"]
    day_before = dt.datetime.fromtimestamp(now - 2 * 86400).strftime("%Y-%m-%dT%H:%M")
    assert names("--until", day_before) == ["three-days-ago"]
    utc_hour_ago = dt.datetime.fromtimestamp(now - 3600, tz=dt.UTC).isoformat()
    assert names("--since", utc_hour_ago) == ["ten-minutes-ago"]


def test_json_has_full_ids_iso_times_and_respects_limit(store: StoreBuilder) -> None:
    parent = store.flow_run("etl", name="parent", start=BASE, parameters={"day": "2024-05-01"})
    child = store.flow_run("etl", name="child", start=BASE + 1, parent=parent.id, tags=["a"])
    store.flow_run("etl", name="newest", start=BASE + 2)

    result = invoke("flow-run", "ls", "--json", "--limit", "2")

    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [run["name"] for run in runs] == ["newest", "child"]
    assert runs[1]["id"] == str(child.id)
    assert runs[1]["parent_flow_run_id"] == str(parent.id)
    assert runs[1]["tags"] == ["a"]
    assert runs[1]["state_type"] == "COMPLETED"
    assert runs[1]["duration"] == 2.5
    start = dt.datetime.fromisoformat(runs[1]["start_time"])
    assert start.utcoffset() == dt.timedelta(0)
    assert abs(start.timestamp() - (BASE + 1)) < 1e-3
    assert result.stderr == ""


def test_empty_store_says_so(store: StoreBuilder) -> None:
    result = invoke("flow-run", "ls")

    assert result.exit_code == 0
    assert result.stdout.strip() == "No flow runs found."
    assert json.loads(invoke("flow-run", "ls", "--json").stdout) == []


def test_unknown_state_is_one_line_listing_the_choices(store: StoreBuilder) -> None:
    result = invoke("flow-run", "ls", "--state", "RUNING")

    assert_one_line_error(
        result, "Unknown state 'RUNING'; choose from: SCHEDULED, PENDING, RUNNING,"
    )


def test_bad_time_filter_is_one_line(store: StoreBuilder) -> None:
    result = invoke("flow-run", "ls", "--since", "yesterday")

    assert_one_line_error(result, "Invalid time 'yesterday' for --since", "1h")


def test_run_killed_without_a_final_state_shows_as_crashed(sqlite_store: StoreBuilder) -> None:
    from headwater.engine.crash import host

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = sqlite_store.flow_run(
        name="killed", state="RUNNING", start=time.time() - 5, process=f"{host()}:{dead.pid}:1"
    )
    alive = sqlite_store.flow_run(
        name="alive", state="RUNNING", start=time.time() - 5, process=f"{host()}:{os.getpid()}:?"
    )

    result = invoke("flow-run", "ls", "--json")

    states = {run["id"]: run["state_type"] for run in json.loads(result.stdout)}
    assert states == {str(killed.id): "CRASHED", str(alive.id): "RUNNING"}, result.stderr


def test_filter_subflow_runs_by_parent_prefix(store: StoreBuilder) -> None:
    parent = store.flow_run("nightly", name="calm-heron")
    store.flow_run("etl", name="child-a", parent=parent.id, start=BASE + 1)
    store.flow_run("etl", name="child-b", parent=parent.id, start=BASE + 2)
    store.flow_run("etl", name="orphan", start=BASE + 3)

    result = invoke("flow-run", "ls", "--parent", str(parent.id)[:18], "--json")
    inspected = invoke("flow-run", "inspect", str(parent.id))

    assert [run["name"] for run in json.loads(result.stdout)] == ["child-b", "child-a"]
    assert f"Subflow runs: 2 (`headwater flow-run ls --parent {parent.id}`)" in inspected.stdout
