"""GET /api/stream: live state changes and logs as server-sent events, from a real server."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import MakeClient
from .helpers import flow_record, flow_run_record, log_record, running_server, state_record
from .helpers import task_run_record as helpers_task_run_record
from .sse import EventReader, app_server


def new_run(api: httpx.Client, flow: str = "live") -> dict[str, Any]:
    """Record a Pending flow run stamped now, as the recorder would; returns its row."""
    now = time.time()
    run = flow_run_record(
        flow,
        state_type="PENDING",
        state_name="Pending",
        state_timestamp=now,
        run_count=1,
        expected_start_time=now,
        start_time=None,
        created=now,
        updated=now,
    )
    body = {
        "flows": [flow_record(flow)],
        "flow_runs": [run],
        "states": [state_record(run["id"], None, "PENDING", now)],
    }
    assert api.post("/records", json=body).status_code == 200
    return run


def move(api: httpx.Client, run: dict[str, Any], state_type: str, **body: Any) -> None:
    """Record the run's next state through /api/records (with more records in `body`)."""
    now = time.time()
    run.update(state_type=state_type, state_name=state_type.title(), state_timestamp=now)
    run.update(updated=now, start_time=run["start_time"] or now)
    states = [state_record(run["id"], None, state_type, now), *body.pop("states", [])]
    response = api.post("/records", json={"flow_runs": [run], "states": states, **body})
    assert response.status_code == 200, response.text


def task_records(run_id: str, index: int) -> dict[str, list[dict[str, Any]]]:
    """A task run that ran and completed just now, with its two states."""
    started = time.time()
    task = helpers_task_run_record(run_id, index, created=started, start_time=started)
    finished = time.time()
    task.update(state_timestamp=finished, updated=finished, end_time=finished)
    return {
        "task_runs": [task],
        "states": [
            state_record(run_id, task["id"], "RUNNING", started),
            state_record(run_id, task["id"], "COMPLETED", finished),
        ],
    }


def summary(event: Any) -> tuple[str, str]:
    """An event as (kind, state type or log message)."""
    if event.event == "log":
        return "log", event.data["message"]
    if event.event == "end":
        return "end", event.data["state_type"]
    return event.event, event.data["type"]


def run_to_completion(api: httpx.Client, run: dict[str, Any]) -> None:
    """Running, a task run and log lines through /api/records and /api/logs, then Completed."""
    move(api, run, "RUNNING")
    records = task_records(run["id"], 0)
    records["logs"] = [log_record(run["id"], "task log", timestamp=time.time())]
    assert api.post("/records", json=records).status_code == 200
    line = {"flow_run_id": run["id"], "level": 20, "name": "flow", "message": "flow log"}
    assert api.post("/logs", json=[line]).status_code == 200
    move(api, run, "COMPLETED")


EXPECTED = [
    ("flow_run.state", "PENDING"),
    ("flow_run.state", "RUNNING"),
    ("task_run.state", "RUNNING"),
    ("task_run.state", "COMPLETED"),
    ("log", "task log"),
    ("log", "flow log"),
    ("flow_run.state", "COMPLETED"),
    ("end", "COMPLETED"),
]


def test_a_follower_gets_every_state_and_log_in_order_then_end(
    database_url: str, tmp_path: Path
) -> None:
    with running_server(tmp_path / "home", database_url) as (base, _):
        api = httpx.Client(base_url=base, timeout=30)
        run = new_run(api)
        with EventReader(base, flow_run_id=run["id"]) as reader:
            assert summary(reader.next()) == ("flow_run.state", "PENDING")
            run_to_completion(api, run)
            events = reader.until_end()

        assert [summary(e) for e in events] == EXPECTED[1:]
        states = [e.data for e in events if e.event.endswith(".state")]
        assert {s["flow_run_id"] for s in states} == {str(uuid.UUID(run["id"]))}
        assert all(e.id for e in events)
        assert events[-1].data["flow_run_id"] == str(uuid.UUID(run["id"]))


def test_last_event_id_resumes_after_that_event_only(database_url: str, tmp_path: Path) -> None:
    with running_server(tmp_path / "home", database_url) as (base, _):
        api = httpx.Client(base_url=base, timeout=30)
        run = new_run(api)
        with EventReader(base, flow_run_id=run["id"]) as reader:
            first = reader.next()
            move(api, run, "RUNNING")
            running = reader.next()
        assert summary(running) == ("flow_run.state", "RUNNING")

        # While nobody listens: a task run and log lines, then the end of the run.
        records = task_records(run["id"], 0)
        records["logs"] = [log_record(run["id"], "task log", timestamp=time.time())]
        assert api.post("/records", json=records).status_code == 200
        line = {"flow_run_id": run["id"], "level": 20, "name": "flow", "message": "flow log"}
        assert api.post("/logs", json=[line]).status_code == 200
        move(api, run, "COMPLETED")

        assert running.id is not None and first.id is not None
        with EventReader(base, {"Last-Event-ID": running.id}, flow_run_id=run["id"]) as again:
            resumed = again.until_end()
        assert [summary(e) for e in resumed] == EXPECTED[2:]

        # From the first event: everything after it, each event exactly once.
        with EventReader(base, {"Last-Event-ID": first.id}, flow_run_id=run["id"]) as again:
            replayed = again.until_end()
        assert [summary(e) for e in replayed] == EXPECTED[1:]
        assert len({e.data["id"] for e in replayed[:-1]}) == len(replayed) - 1

        # `after` does the same for a first request (a browser's EventSource sets no header).
        with EventReader(base, flow_run_id=run["id"], after=running.id) as again:
            assert [summary(e) for e in again.until_end()] == EXPECTED[2:]


def test_a_long_history_arrives_whole_and_in_order(database_url: str, tmp_path: Path) -> None:
    # More rows than one page of each source (500), states and logs interleaved in time.
    with running_server(tmp_path / "home", database_url) as (base, _):
        api = httpx.Client(base_url=base, timeout=60)
        run = new_run(api)
        start = time.time()
        body: dict[str, list[dict[str, Any]]] = {"task_runs": [], "states": [], "logs": []}
        for index in range(700):
            stamp = start + index * 0.001
            task = helpers_task_run_record(run["id"], index, state_timestamp=stamp, updated=stamp)
            body["task_runs"].append(task)
            body["states"].append(state_record(run["id"], task["id"], "COMPLETED", stamp))
            body["logs"].append(log_record(run["id"], f"line {index}", timestamp=stamp + 0.0005))
        assert api.post("/records", json=body).status_code == 200
        move(api, run, "COMPLETED")
        with EventReader(base, flow_run_id=run["id"]) as reader:
            events = reader.until_end(timeout=60)

    assert len(events) == 1 + 700 + 700 + 1 + 1
    stamps = [dt.datetime.fromisoformat(e.data["timestamp"]) for e in events[:-1]]
    assert stamps == sorted(stamps)
    assert [e.data["message"] for e in events if e.event == "log"] == [
        f"line {index}" for index in range(700)
    ]
    assert len({e.data["id"] for e in events[:-1]}) == len(events) - 1


def test_kinds_selects_what_is_sent(database_url: str, tmp_path: Path) -> None:
    with running_server(tmp_path / "home", database_url) as (base, _):
        api = httpx.Client(base_url=base, timeout=30)
        run = new_run(api)
        run_to_completion(api, run)
        with EventReader(base, flow_run_id=run["id"], kinds="logs") as reader:
            logs = reader.until_end()
        with EventReader(base, flow_run_id=run["id"], kinds="states") as reader:
            states = reader.until_end()
    assert [summary(e) for e in logs] == [e for e in EXPECTED if e[0] in ("log", "end")]
    assert [summary(e) for e in states] == [e for e in EXPECTED if e[0] != "log"]


def test_a_row_that_commits_late_is_still_sent(database_url: str, tmp_path: Path) -> None:
    # A batch retried by a client, or a second process of the run, commits a row
    # stamped before rows the stream already sent: it is sent too, not skipped.
    with running_server(tmp_path / "home", database_url) as (base, _):
        api = httpx.Client(base_url=base, timeout=30)
        run = new_run(api)
        with EventReader(base, flow_run_id=run["id"], kinds="logs") as reader:
            stamped = time.time()
            api.post("/records", json={"logs": [log_record(run["id"], "on time")]})
            assert reader.next().data["message"] == "on time"
            late = log_record(run["id"], "late", timestamp=stamped - 2)
            api.post("/records", json={"logs": [late]})
            assert reader.next(timeout=5).data["message"] == "late"


def test_the_stream_of_all_runs_sends_their_state_changes_from_now_on(
    database_url: str, tmp_path: Path
) -> None:
    with running_server(tmp_path / "home", database_url) as (base, _):
        api = httpx.Client(base_url=base, timeout=30)
        before = new_run(api, "earlier")
        with EventReader(base) as reader:
            created = api.post("/flow_runs", json={"flow_name": "listed"})
            assert created.status_code == 201
            run_id = created.json()["id"]
            api.post(f"/flow_runs/{run_id}/set_state", json={"type": "RUNNING"})
            move(api, before, "RUNNING")
            events = [reader.next() for _ in range(3)]
    assert [(e.event, e.data["flow_run_id"], e.data["type"]) for e in events] == [
        ("flow_run.state", run_id, "PENDING"),
        ("flow_run.state", run_id, "RUNNING"),
        ("flow_run.state", str(uuid.UUID(before["id"])), "RUNNING"),
    ]


def test_a_stream_hears_a_write_at_once_though_it_polls_every_5s(
    database_url: str, tmp_path: Path
) -> None:
    # In process on SQLite, and through the same notifier on PostgreSQL.
    with app_server(tmp_path / "home", database_url, stream_poll_interval=5.0) as (base, _):
        api = httpx.Client(base_url=base, timeout=30)
        run = new_run(api)
        with EventReader(base, flow_run_id=run["id"], kinds="logs") as reader:
            delays = []
            for index in range(5):
                sent = time.monotonic()
                api.post(
                    "/records",
                    json={"logs": [log_record(run["id"], f"line {index}", timestamp=time.time())]},
                )
                event = reader.next(timeout=10)
                assert event.data["message"] == f"line {index}"
                delays.append(event.received - sent)
    assert max(delays) < 1.0, delays


def test_heartbeats_keep_a_quiet_stream_open(database_url: str, tmp_path: Path) -> None:
    options = {"stream_heartbeat_interval": 0.3}
    with (
        app_server(tmp_path / "home", database_url, **options) as (base, _),
        EventReader(base) as reader,
    ):
        time.sleep(1.2)
        heartbeats = [line for line, _ in reader.comments if line.startswith(": keep-alive")]
    assert len(heartbeats) >= 2


@pytest.mark.parametrize(
    ("params", "headers", "status", "says"),
    [
        ({"flow_run_id": str(uuid.uuid4())}, {}, 404, "No flow run found"),
        ({"kinds": "states,bogus"}, {}, 422, "kinds"),
        ({"kinds": "logs"}, {}, 422, "needs a flow_run_id"),
        ({}, {"Last-Event-ID": "nonsense"}, 422, "Last-Event-ID"),
        ({"after": "s:1.5:nothex"}, {}, 422, "after 's:1.5:nothex' is not an event id"),
        ({"flow_run_id": "not-a-uuid"}, {}, 422, "flow_run_id"),
    ],
)
def test_a_bad_request_is_refused_before_streaming(
    make_client: MakeClient,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    response = make_client().get("/stream", params=params, headers=headers)
    assert response.status_code == status
    assert says in response.json()["message"]


def test_the_stream_needs_the_api_key(make_client: MakeClient) -> None:
    client = make_client(api_key="k3y")
    response = client.get("/stream", params={"flow_run_id": str(uuid.uuid4())})
    assert response.status_code == 401
    authorized = client.get(
        "/stream",
        params={"flow_run_id": str(uuid.uuid4())},
        headers={"Authorization": "Bearer k3y"},
    )
    assert authorized.status_code == 404
