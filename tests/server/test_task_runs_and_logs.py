"""Task runs, their state history, and logs through the API."""

from __future__ import annotations

import uuid

from .conftest import TestClient
from .helpers import T0, log_record, run_batch


def test_task_runs_filter_page_and_count(client: TestClient) -> None:
    body = run_batch(tasks=5, logs=0)
    body["task_runs"][0] |= {"state_type": "FAILED", "state_name": "Failed"}
    other = run_batch(tasks=2, logs=0)
    client.post("/records", json=body)
    client.post("/records", json=other)
    run_id = body["flow_runs"][0]["id"]

    page = client.get("/task_runs", params={"flow_run_id": run_id, "limit": 2, "offset": 1}).json()
    assert page["total"] == 5
    assert [task["name"] for task in page["items"]] == ["double-1", "double-2"]
    newest = client.get("/task_runs", params={"flow_run_id": run_id, "newest_first": True})
    assert newest.json()["items"][0]["name"] == "double-4"
    failed = client.get("/task_runs", params={"state_type": "FAILED"}).json()
    assert [task["id"] for task in failed["items"]] == [str(uuid.UUID(body["task_runs"][0]["id"]))]
    timed = client.get("/task_runs", params={"flow_run_id": run_id, "since": T0 + 4}).json()
    assert [task["name"] for task in timed["items"]] == ["double-2", "double-3", "double-4"]
    counts = client.get("/task_runs/counts", params={"flow_run_id": run_id}).json()
    assert counts == {"counts": {"COMPLETED": 4, "FAILED": 1}, "total": 5}

    task = client.get(f"/task_runs/{body['task_runs'][1]['id']}").json()
    assert (task["flow_run_id"], task["duration"]) == (str(uuid.UUID(run_id)), 1.0)
    assert task["task_inputs"] == {"x": []}


def test_logs_are_written_in_batches_and_queried_by_run_level_and_time(
    client: TestClient,
) -> None:
    body = run_batch(tasks=1, logs=0)
    client.post("/records", json=body)
    run_id, task_id = body["flow_runs"][0]["id"], body["task_runs"][0]["id"]
    lines = [
        log_record(run_id, "starting", timestamp=T0 + 1),
        log_record(run_id, "careful", level=30, timestamp=T0 + 2, task_run_id=task_id),
        log_record(run_id, "broken", level=40, timestamp=T0 + 3),
    ]
    lines[0].pop("id")  # the server assigns one
    lines[1]["timestamp"] = "2023-11-14T22:13:22.25Z"

    assert client.post("/logs", json=lines).json()["logs"] == 3
    assert client.post("/logs", json=lines[1:]).json()["logs"] == 2  # ignored: same ids

    def messages(**params: object) -> list[str]:
        return [line["message"] for line in client.get("/logs", params=params).json()["items"]]

    assert messages(flow_run_id=run_id) == ["starting", "careful", "broken"]
    assert messages(flow_run_id=run_id, min_level=30) == ["careful", "broken"]
    assert messages(task_run_id=task_id) == ["careful"]
    assert messages(flow_run_id=run_id, since=T0 + 1.5, until="2023-11-14T22:13:22.25Z") == [
        "careful"
    ]
    page = client.get("/logs", params={"flow_run_id": run_id, "limit": 1, "offset": 1}).json()
    assert (page["total"], [line["message"] for line in page["items"]]) == (3, ["careful"])


def test_bad_log_lines_are_422s_naming_the_field(client: TestClient) -> None:
    response = client.post("/logs", json=[{"level": "loud", "name": "x", "message": "m"}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", 0, "level"]
    assert client.get("/logs", params={"min_level": -1}).status_code == 422
