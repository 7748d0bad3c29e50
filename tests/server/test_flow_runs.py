"""Flow runs through the API: create, read, filter, page, count, set state, delete."""

from __future__ import annotations

import uuid

import pytest

from .conftest import MakeClient, TestClient
from .helpers import T0, run_batch


def _ingest_runs(client: TestClient, *runs: dict[str, object]) -> list[str]:
    ids = []
    for values in runs:
        body = run_batch(str(values.pop("flow", "etl")), tasks=0, logs=0, **values)
        assert client.post("/records", json=body).status_code == 200
        ids.append(str(uuid.UUID(body["flow_runs"][0]["id"])))
    return ids


def test_create_read_and_create_again_with_the_same_id(client: TestClient) -> None:
    run_id = str(uuid.uuid4())
    body = {"id": run_id, "flow_name": "report", "parameters": {"day": "2024-05-01"}}

    created = client.post("/flow_runs", json=body)
    again = client.post("/flow_runs", json=body)

    assert (created.status_code, again.status_code) == (201, 200)
    assert created.json() == again.json()
    run = client.get(f"/flow_runs/{run_id}").json()
    assert run["flow_name"] == "report"
    assert (run["state_type"], run["state_name"], run["run_count"]) == ("PENDING", "Pending", 0)
    assert run["root_flow_run_id"] == run_id
    assert client.get("/flows/name/report").json()["id"] == run["flow_id"]
    assert [s["type"] for s in client.get(f"/flow_runs/{run_id}/states").json()] == ["PENDING"]


def test_a_subflow_run_gets_its_parents_root(client: TestClient) -> None:
    parent = client.post("/flow_runs", json={"flow_name": "outer"}).json()
    child = client.post(
        "/flow_runs", json={"flow_name": "inner", "parent_flow_run_id": parent["id"]}
    ).json()
    assert child["root_flow_run_id"] == parent["id"]
    listed = client.get("/flow_runs", params={"parent_flow_run_id": parent["id"]}).json()
    assert [run["id"] for run in listed["items"]] == [child["id"]]


def test_create_errors_name_the_problem(client: TestClient) -> None:
    response = client.post("/flow_runs", json={})
    assert response.status_code == 422
    assert "flow_id" in response.json()["message"]

    unknown = str(uuid.uuid4())
    response = client.post("/flow_runs", json={"flow_id": unknown})
    assert response.status_code == 404
    assert unknown in response.json()["message"]

    response = client.post("/flow_runs", json={"flow_name": "a", "parent_flow_run_id": unknown})
    assert response.status_code == 404
    assert "parent_flow_run_id" in response.json()["message"]

    response = client.post("/flow_runs", json={"flow_name": "a", "state": {"type": "LATE"}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "state", "type"]


def test_parameters_over_the_limit_are_a_413(make_client: MakeClient) -> None:
    client = make_client(parameters_max_bytes=100)
    response = client.post("/flow_runs", json={"flow_name": "a", "parameters": {"x": "y" * 100}})
    assert response.status_code == 413
    assert "parameters" in response.json()["message"]
    assert client.post("/flow_runs", json={"flow_name": "a", "parameters": {"x": 1}}).is_success


def test_filters_paging_and_counts(client: TestClient) -> None:
    etl_done, etl_failed, report_done, _report_running = _ingest_runs(
        client,
        {"flow": "etl", "state_type": "COMPLETED", "tags": ["nightly", "big"], "start_time": T0},
        {"flow": "etl", "state_type": "FAILED", "tags": ["nightly"], "start_time": T0 + 10},
        {"flow": "report", "state_type": "COMPLETED", "tags": [], "start_time": T0 + 20},
        {"flow": "report", "state_type": "RUNNING", "tags": ["big"], "start_time": T0 + 30},
    )

    def ids(**params: object) -> list[str]:
        page = client.get("/flow_runs", params=params).json()
        return [run["id"] for run in page["items"]]

    assert ids(flow_name="etl") == [etl_failed, etl_done]  # latest run time first
    assert ids(flow_name="etl", sort="RUN_TIME_ASC") == [etl_done, etl_failed]
    assert ids(state_type=["COMPLETED", "FAILED"], flow_name="etl") == [etl_failed, etl_done]
    assert ids(tag=["nightly", "big"]) == [etl_done]
    assert set(ids(tag="nightly")) == {etl_done, etl_failed}
    assert ids(since="2023-11-14T22:13:35Z", until=T0 + 25) == [report_done]
    flow_id = client.get("/flows/name/report").json()["id"]
    assert len(ids(flow_id=flow_id)) == 2

    page = client.get("/flow_runs", params={"limit": 3, "offset": 2}).json()
    assert (page["total"], len(page["items"]), page["offset"]) == (4, 2, 2)
    first = client.get("/flow_runs", params={"limit": 1}).json()
    assert first["total"] == 4

    counts = client.get("/flow_runs/counts").json()
    assert counts == {"counts": {"COMPLETED": 2, "FAILED": 1, "RUNNING": 1}, "total": 4}
    counts = client.get("/flow_runs/counts", params={"flow_name": "etl"}).json()
    assert counts["counts"] == {"COMPLETED": 1, "FAILED": 1}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state_type": "DONE"}, "state_type"),
        ({"limit": 0}, "limit"),
        ({"limit": 100_000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"since": "last tuesday"}, "since"),
        ({"flow_id": "123"}, "flow_id"),
        ({"sort": "NAME"}, "sort"),
    ],
)
def test_bad_filters_are_422s_naming_the_parameter(
    client: TestClient, params: dict[str, object], field: str
) -> None:
    response = client.get("/flow_runs", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["query", field]


def test_set_state_moves_the_run_and_refuses_to_leave_a_final_state(client: TestClient) -> None:
    run = client.post("/flow_runs", json={"flow_name": "etl"}).json()
    url = f"/flow_runs/{run['id']}/set_state"

    running = client.post(url, json={"type": "RUNNING"})
    done = client.post(url, json={"type": "COMPLETED", "message": "all good"})
    refused = client.post(url, json={"type": "RUNNING"})

    assert running.status_code == done.status_code == 200
    assert done.json()["accepted"] is True
    assert refused.status_code == 409
    assert "final state" in refused.json()["message"]
    read = client.get(f"/flow_runs/{run['id']}").json()
    assert (read["state_type"], read["state_message"], read["run_count"]) == (
        "COMPLETED",
        "all good",
        1,
    )
    assert read["start_time"] is not None and read["end_time"] is not None
    history = client.get(f"/flow_runs/{run['id']}/states").json()
    assert [s["type"] for s in history] == ["PENDING", "RUNNING", "COMPLETED"]

    forced = client.post(url, json={"type": "SCHEDULED", "name": "AwaitingRetry", "force": True})
    assert forced.status_code == 200
    assert client.get(f"/flow_runs/{run['id']}").json()["end_time"] is None


def test_set_state_checks_the_expected_state_and_repeats_idempotently(
    client: TestClient,
) -> None:
    run = client.post("/flow_runs", json={"flow_name": "etl"}).json()
    url = f"/flow_runs/{run['id']}/set_state"

    wrong = client.post(url, json={"type": "RUNNING", "expected_state_type": "SCHEDULED"})
    assert wrong.status_code == 409
    assert "PENDING" in wrong.json()["message"]

    state_id = str(uuid.uuid4())
    body = {"id": state_id, "type": "RUNNING", "expected_state_type": "PENDING"}
    first = client.post(url, json=body)
    second = client.post(url, json=body)
    assert first.status_code == second.status_code == 200
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    assert first.json()["state"] == second.json()["state"]
    assert len(client.get(f"/flow_runs/{run['id']}/states").json()) == 2


def test_unknown_ids_are_404s_with_a_message(client: TestClient) -> None:
    missing = str(uuid.uuid4())
    for response in (
        client.get(f"/flow_runs/{missing}"),
        client.get(f"/flow_runs/{missing}/states"),
        client.post(f"/flow_runs/{missing}/set_state", json={"type": "RUNNING"}),
        client.delete(f"/flow_runs/{missing}"),
        client.get(f"/task_runs/{missing}"),
        client.get(f"/task_runs/{missing}/states"),
        client.get(f"/flows/{missing}"),
        client.delete(f"/flows/{missing}"),
        client.get("/flows/name/nothing-by-this-name"),
    ):
        assert response.status_code == 404, response.request.url
        assert "No " in response.json()["message"]
    assert client.get("/flow_runs/not-an-id").status_code == 422


def test_delete_removes_the_run_with_its_task_runs_states_and_logs(client: TestClient) -> None:
    keep = run_batch(tasks=1, logs=1)
    gone = run_batch(tasks=2, logs=2)
    client.post("/records", json=keep)
    client.post("/records", json=gone)
    gone_id = gone["flow_runs"][0]["id"]
    for run in (keep, gone):
        artifact = {
            "type": "markdown",
            "data": "# report",
            "flow_run_id": run["flow_runs"][0]["id"],
        }
        assert client.post("/artifacts", json=artifact).status_code == 201

    assert client.delete(f"/flow_runs/{gone_id}").status_code == 204

    assert client.get(f"/flow_runs/{gone_id}").status_code == 404
    assert client.get("/task_runs").json()["total"] == 1
    assert client.get("/logs").json()["total"] == 1
    assert client.get("/artifacts").json()["total"] == 1  # the kept run's
    task_id = gone["task_runs"][0]["id"]
    assert client.get(f"/task_runs/{task_id}").status_code == 404


def test_deleting_a_flow_deletes_its_runs(client: TestClient) -> None:
    _ingest_runs(client, {"flow": "etl"}, {"flow": "etl"}, {"flow": "report"})
    flow = client.get("/flows/name/etl").json()

    assert client.get(f"/flows/{flow['id']}").json() == flow
    assert client.delete(f"/flows/{flow['id']}").status_code == 204

    assert [f["name"] for f in client.get("/flows").json()["items"]] == ["report"]
    assert client.get("/flow_runs").json()["total"] == 1
    assert client.get("/flows", params={"name_like": "EP"}).json()["total"] == 1
