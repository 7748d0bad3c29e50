"""POST /api/records: the ingest contract the SDK's HttpBackend relies on."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from headwater.schemas import records as schemas
from headwater.store import columns, tables

from .conftest import MakeClient, TestClient
from .helpers import T0, flow_record, flow_run_record, run_batch, state_record, task_run_record


def _counts(client: TestClient, flow_run_id: str) -> tuple[int, int, int]:
    task_runs = client.get("/task_runs", params={"flow_run_id": flow_run_id}).json()["total"]
    states = len(client.get(f"/flow_runs/{flow_run_id}/states").json())
    logs = client.get("/logs", params={"flow_run_id": flow_run_id}).json()["total"]
    return task_runs, states, logs


def test_record_models_have_exactly_the_store_columns_in_order() -> None:
    assert tuple(schemas.FlowRecord.model_fields) == columns.FLOW
    assert tuple(schemas.FlowRunRecord.model_fields) == columns.FLOW_RUN
    assert tuple(schemas.TaskRunRecord.model_fields) == columns.TASK_RUN
    assert tuple(schemas.StateRecord.model_fields) == columns.STATE
    assert tuple(schemas.LogRecord.model_fields) == columns.LOG


def test_text_limits_match_the_column_lengths() -> None:
    from headwater.schemas import _types

    assert tables.flow_run.c.name.type.length == _types.NAME_LENGTH  # type: ignore[attr-defined]
    assert tables.flow_run.c.state_type.type.length == _types.STATE_TYPE_LENGTH  # type: ignore[attr-defined]
    assert tables.flow_run.c.state_name.type.length == _types.STATE_NAME_LENGTH  # type: ignore[attr-defined]
    assert tables.task_run.c.dynamic_key.type.length == _types.DYNAMIC_KEY_LENGTH  # type: ignore[attr-defined]


def test_a_batch_is_written_and_reads_back_through_the_resources(client: TestClient) -> None:
    body = run_batch(tasks=3, logs=2)
    run = body["flow_runs"][0]

    response = client.post("/records", json=body)

    assert response.status_code == 200
    assert response.json() == {
        "flows": 1,
        "flow_runs": 1,
        "task_runs": 3,
        "states": 10,
        "logs": 2,
        "events": 0,
    }
    read = client.get(f"/flow_runs/{run['id']}").json()
    assert read["id"] == str(uuid.UUID(run["id"]))
    assert read["flow_name"] == "etl"
    assert read["state_type"] == "RUNNING"
    assert read["parameters"] == {"x": 1}
    assert read["start_time"] == "2023-11-14T22:13:21.250000Z"
    assert _counts(client, run["id"]) == (3, 1, 2)
    task = client.get("/task_runs", params={"flow_run_id": run["id"]}).json()["items"][0]
    history = client.get(f"/task_runs/{task['id']}/states").json()
    assert [state["type"] for state in history] == ["PENDING", "RUNNING", "COMPLETED"]


def test_sending_the_same_batch_twice_changes_nothing(client: TestClient) -> None:
    body = run_batch(tasks=4, logs=3)
    run_id = body["flow_runs"][0]["id"]

    first = client.post("/records", json=body)
    second = client.post("/records", json=body)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert _counts(client, run_id) == (4, 1, 3)
    assert client.get("/flow_runs").json()["total"] == 1
    assert client.get("/flows").json()["total"] == 1


def test_a_later_row_of_a_run_replaces_the_earlier_one(client: TestClient) -> None:
    body = run_batch(tasks=0, logs=0)
    client.post("/records", json=body)
    run = body["flow_runs"][0] | {
        "state_type": "COMPLETED",
        "state_name": "Completed",
        "state_timestamp": T0 + 9,
        "end_time": T0 + 9,
        "updated": T0 + 9,
    }

    assert client.post("/records", json={"flow_runs": [run]}).status_code == 200

    read = client.get(f"/flow_runs/{run['id']}").json()
    assert (read["state_type"], read["duration"]) == ("COMPLETED", 8.0)


def test_dashed_ids_iso_timestamps_and_missing_lists_are_accepted(client: TestClient) -> None:
    run = flow_run_record(
        "etl",
        id=str(uuid.uuid4()).upper(),
        created="2024-05-01T12:00:00Z",
        updated="2024-05-01T12:00:01+00:00",
        state_timestamp="2024-05-01T12:00:01",  # no offset: UTC
    )
    response = client.post("/records", json={"flows": [flow_record()], "flow_runs": [run]})

    assert response.status_code == 200, response.text
    read = client.get(f"/flow_runs/{run['id'].lower()}").json()
    assert read["created"] == "2024-05-01T12:00:00Z"
    assert read["state_timestamp"] == "2024-05-01T12:00:01Z"
    assert client.post("/records", json={}).json() == dict.fromkeys(
        ("flows", "flow_runs", "task_runs", "states", "logs", "events"), 0
    )


def test_gzip_bodies_are_accepted(client: TestClient) -> None:
    body = run_batch(tasks=2)
    response = client.post(
        "/records",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["task_runs"] == 2


def test_broken_gzip_is_a_400(client: TestClient) -> None:
    response = client.post("/records", content=b"not gzip", headers={"content-encoding": "gzip"})
    assert response.status_code == 400
    assert "gzip" in response.json()["message"]


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"state_type": "DONE"}, ["body", "flow_runs", 0, "state_type"]),
        ({"id": "not-a-uuid"}, ["body", "flow_runs", 0, "id"]),
        ({"created": "yesterday"}, ["body", "flow_runs", 0, "created"]),
        ({"created": 1e300}, ["body", "flow_runs", 0, "created"]),
        ({"run_count": 2**40}, ["body", "flow_runs", 0, "run_count"]),
        ({"name": "x" * 256}, ["body", "flow_runs", 0, "name"]),
        ({"name": "nul\x00"}, ["body", "flow_runs", 0, "name"]),
        ({"tags": "etl"}, ["body", "flow_runs", 0, "tags"]),
        ({"colour": "blue"}, ["body", "flow_runs", 0, "colour"]),
    ],
)
def test_a_bad_field_is_a_422_naming_it_and_nothing_is_written(
    client: TestClient, change: dict[str, object], location: list[object]
) -> None:
    body = run_batch(tasks=1)
    body["flow_runs"][0] |= change

    response = client.post("/records", json=body)

    assert response.status_code == 422
    assert location in [detail["loc"][: len(location)] for detail in response.json()["detail"]]
    assert str(location[-1]) in response.json()["message"]
    assert client.get("/flows").json()["total"] == 0  # the whole batch was refused


def test_missing_columns_and_wrong_json_are_422s(client: TestClient) -> None:
    state = state_record(None, None, "RUNNING", T0)
    del state["timestamp"]
    response = client.post("/records", json={"states": [state]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "states", 0, "timestamp"]

    response = client.post("/records", content=b"{not json", headers={"content-type": "x"})
    assert response.status_code == 422
    assert client.post("/records", json=[1, 2]).status_code == 422
    assert client.post("/records", json={"runs": []}).status_code == 422


def test_a_task_run_of_an_unknown_flow_run_is_no_server_error(
    client: TestClient, database_url: str
) -> None:
    orphan = task_run_record(uuid.uuid4().hex)
    response = client.post("/records", json={"task_runs": [orphan]})
    # PostgreSQL enforces the foreign key (409); SQLite stores the row.
    expected = 409 if database_url.startswith("postgresql") else 200
    assert response.status_code == expected, response.text


def test_parameters_over_the_limit_are_a_413_naming_the_field(make_client: MakeClient) -> None:
    client = make_client(parameters_max_bytes=1000)
    body = run_batch(tasks=0, parameters={"blob": "x" * 1000})

    response = client.post("/records", json=body)

    assert response.status_code == 413
    assert "flow_runs[0].parameters" in response.json()["message"]
