"""Deployments run by real workers: on time, cancelled, crashed, retried, never twice."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import time

from tests.server.helpers import headwater_command

from .conftest import Stack, alive, eventually


def _seconds(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def test_a_run_starts_on_a_worker_and_reports_its_states_and_logs(stack: Stack) -> None:
    deployment = stack.deploy("quick", parameters={"tag": "default"})
    stack.start_worker()

    run = stack.run(deployment, n=21)

    done = stack.wait_for_state(run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert done["state_type"] == "COMPLETED", done["state_message"]
    assert done["parameters"] == {"tag": "default", "n": 21}
    assert done["deployment_id"] == deployment["id"]
    history = [s["type"] for s in stack.request("GET", f"/flow_runs/{run['id']}/states")]
    assert history[:3] == ["SCHEDULED", "PENDING", "RUNNING"]
    assert history[-1] == "COMPLETED"
    messages = [
        line["message"]
        for line in stack.request("GET", "/logs", params={"flow_run_id": run["id"]})["items"]
    ]
    assert "quick default for deployment quick" in messages


def test_scheduled_runs_start_on_time(stack: Stack) -> None:
    stack.start_worker()
    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    deployment = stack.deploy(
        "quick",
        schedules=[{"schedule": {"interval": 2.0, "anchor_date": anchor.isoformat()}}],
    )

    time.sleep(6.5)

    runs = stack.request(
        "GET", "/flow_runs", params={"deployment_id": deployment["id"], "limit": 200}
    )["items"]
    started = [r for r in runs if r["start_time"] is not None]
    assert len(started) >= 2, [(r["state_type"], r["expected_start_time"]) for r in runs]
    for run in started:
        delay = _seconds(run["start_time"]) - _seconds(run["expected_start_time"])
        assert -0.05 <= delay < 1.0, (run["name"], delay)
    due = {r["expected_start_time"] for r in runs}
    assert len(due) == len(runs), "a scheduled time has two runs"


def test_cancelling_a_running_run_stops_its_process_within_seconds(stack: Stack) -> None:
    deployment = stack.deploy("slow")
    stack.start_worker()
    run = stack.run(deployment)
    mark = stack.wait_for_mark(f"slow-started-{run['id']}")[0]
    pid = int(mark.name.rsplit("-", 1)[1])

    cancelled_at = time.monotonic()
    answer = stack.request("POST", f"/flow_runs/{run['id']}/cancel")

    assert answer["state_type"] == "CANCELLING"
    done = stack.wait_for_state(run["id"], "CANCELLED", "CRASHED", "COMPLETED", timeout=15)
    assert done["state_type"] == "CANCELLED", done["state_message"]
    assert time.monotonic() - cancelled_at < 5
    eventually(lambda: not alive(pid))
    assert stack.wait_for_mark(f"cancelled-{run['id']}")  # on_cancellation hook ran


def test_cancelling_a_run_that_has_not_started_cancels_it_at_once(stack: Stack) -> None:
    deployment = stack.deploy("quick")
    run = stack.run(deployment)  # no worker: it waits in the queue

    answer = stack.request("POST", f"/flow_runs/{run['id']}/cancel")

    assert answer["state_type"] == "CANCELLED"
    stack.start_worker()
    time.sleep(1.5)
    assert stack.flow_run(run["id"])["state_type"] == "CANCELLED"
    assert not list(stack.marks.glob("quick-*"))


def test_a_killed_worker_leaves_its_run_crashed(stack: Stack) -> None:
    deployment = stack.deploy("slow")
    worker = stack.start_worker("--heartbeat-interval", "1")
    run = stack.run(deployment)
    mark = stack.wait_for_mark(f"slow-started-{run['id']}")[0]
    pid = int(mark.name.rsplit("-", 1)[1])

    worker.send_signal(signal.SIGKILL)

    eventually(lambda: not alive(pid), timeout=5)  # the run's process follows its worker
    done = stack.wait_for_state(run["id"], "CRASHED", "COMPLETED", "FAILED", timeout=30)
    assert done["state_type"] == "CRASHED"
    assert "worker" in (done["state_message"] or "")


def test_a_killed_worker_s_run_is_retried_when_the_flow_has_retries(stack: Stack) -> None:
    deployment = stack.deploy("fragile")
    first = stack.start_worker("--heartbeat-interval", "1")
    run = stack.run(deployment)
    stack.wait_for_mark(f"fragile-{run['id']}-attempt-1")

    first.send_signal(signal.SIGKILL)
    stack.start_worker("--heartbeat-interval", "1")

    done = stack.wait_for_state(run["id"], "COMPLETED", "CRASHED", "FAILED", timeout=40)
    assert done["state_type"] == "COMPLETED", done["state_message"]
    assert done["run_count"] == 2
    assert stack.wait_for_mark(f"fragile-{run['id']}-attempt-2")
    names = [s["name"] for s in stack.request("GET", f"/flow_runs/{run['id']}/states")]
    assert "AwaitingRetry" in names


def test_two_workers_on_one_pool_never_run_the_same_run(stack: Stack) -> None:
    deployment = stack.deploy("quick")
    runs = [stack.run(deployment, tag=str(i)) for i in range(24)]
    stack.start_worker("--limit", "4")
    stack.start_worker("--limit", "4")

    for run in runs:
        done = stack.wait_for_state(run["id"], "COMPLETED", "FAILED", "CRASHED", timeout=90)
        assert done["state_type"] == "COMPLETED", done["state_message"]
        assert done["run_count"] == 1

    for run in runs:
        assert len(list(stack.marks.glob(f"quick-{run['id']}-*"))) == 1
    workers = stack.request("GET", "/work_pools/etl/workers")
    assert len(workers) == 2


def test_serve_runs_its_deployment_s_runs(stack: Stack) -> None:
    stack.start([sys.executable, "flows.py", "served"], "serve")
    eventually(
        lambda: stack.http.get("/deployments/name/quick/served").status_code == 200, timeout=30
    )
    deployment = stack.request("GET", "/deployments/name/quick/served")
    assert deployment["work_pool_name"] is None

    run = stack.run(deployment, tag="served")

    done = stack.wait_for_state(run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert done["state_type"] == "COMPLETED", done["state_message"]
    assert stack.request("GET", "/deployments/name/quick/served")["status"] == "READY"


def test_job_variables_set_the_process_environment_directory_and_command(stack: Stack) -> None:
    workdir = stack.project / "workdir"
    workdir.mkdir()
    deployment = stack.deploy(
        "where",
        job_variables={"env": {"GREETING": "hello"}, "working_dir": str(workdir)},
    )
    stack.start_worker()

    first = stack.run(deployment)
    assert stack.wait_for_state(first["id"], "COMPLETED", "FAILED", "CRASHED")["state_type"] == (
        "COMPLETED"
    )
    assert stack.wait_for_mark("where-hello-workdir-")

    command = f"{sys.executable} -m headwater.worker.execute"
    second = stack.request(
        "POST",
        f"/deployments/{deployment['id']}/create_flow_run",
        json={"job_variables": {"command": command, "env": {"GREETING": "again"}}},
    )
    done = stack.wait_for_state(second["id"], "COMPLETED", "FAILED", "CRASHED")
    assert done["state_type"] == "COMPLETED", done["state_message"]
    assert stack.wait_for_mark("where-again-workdir-")


def test_a_second_services_process_creates_no_duplicate_runs(stack: Stack) -> None:
    stack.start([*headwater_command(), "services", "start", "--interval", "0.3"], "services-2")
    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0)
    deployment = stack.deploy(
        "quick", schedules=[{"schedule": {"interval": 1.0, "anchor_date": anchor.isoformat()}}]
    )
    time.sleep(3)
    stack.request(  # editing the schedule replaces the future runs it made
        "PATCH",
        f"/deployments/{deployment['id']}/schedules/{deployment['schedules'][0]['id']}",
        json={"schedule": {"interval": 2.0, "anchor_date": anchor.isoformat()}},
    )
    time.sleep(3)

    runs = stack.request(
        "GET", "/flow_runs", params={"deployment_id": deployment["id"], "limit": 1000}
    )["items"]
    due = [r["expected_start_time"] for r in runs]
    assert len(runs) > 3
    assert len(due) == len(set(due)), "two runs for one scheduled time"
    future = [
        r
        for r in runs
        if r["state_type"] == "SCHEDULED" and _seconds(r["expected_start_time"]) > time.time() + 1
    ]
    assert future and all(
        (_seconds(r["expected_start_time"]) - anchor.timestamp()) % 2 == 0 for r in future
    )
