"""Deployments through the API: upsert, read, list, change, pause, delete, runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .conftest import TestClient

SCHEMA = {
    "type": "object",
    "properties": {"day": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["day"],
}


def _deploy(client: TestClient, name: str = "nightly", **fields: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "flow_name": "etl",
        "entrypoint": "flows/etl.py:etl",
        "path": "/srv/project",
        "parameter_schema": SCHEMA,
        "parameters": {"n": 3},
        **fields,
    }
    response = client.post("/deployments", json=body)
    assert response.status_code in (200, 201), response.text
    found: dict[str, Any] = response.json()
    return found


def test_create_read_by_name_and_update_by_sending_it_again(client: TestClient) -> None:
    created = client.post(
        "/deployments",
        json={"name": "nightly", "flow_name": "etl", "tags": ["etl"], "parameters": {"n": 1}},
    )
    again = client.post(
        "/deployments",
        json={"name": "nightly", "flow_name": "etl", "tags": ["etl", "v2"], "version": "2"},
    )

    assert (created.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == created.json()["id"]
    found = client.get("/deployments/name/etl/nightly").json()
    assert (found["version"], found["tags"], found["parameters"]) == ("2", ["etl", "v2"], {})
    assert found["status"] == "NOT_READY"  # nobody serves it yet
    assert client.get(f"/deployments/{found['id']}").json() == found
    assert client.get("/flows/name/etl").json()["id"] == found["flow_id"]


def test_list_filters_by_flow_pool_and_tag(client: TestClient) -> None:
    assert client.post("/work_pools", json={"name": "etl", "type": "process"}).status_code == 201
    _deploy(client, "a", tags=["x"], work_pool_name="etl")
    _deploy(client, "b", tags=["x", "y"])
    client.post("/deployments", json={"name": "c", "flow_name": "other"})

    def names(**params: Any) -> list[str]:
        return [d["name"] for d in client.get("/deployments", params=params).json()["items"]]

    assert names() == ["a", "b", "c"]
    assert names(flow_name="etl") == ["a", "b"]
    assert names(work_pool_name="etl") == ["a"]
    assert names(tag=["x", "y"]) == ["b"]


def test_unknown_pool_or_queue_is_a_404_naming_the_fix(client: TestClient) -> None:
    response = client.post(
        "/deployments", json={"name": "n", "flow_name": "etl", "work_pool_name": "nope"}
    )
    assert response.status_code == 404
    assert "headwater work-pool create nope" in response.json()["message"]
    client.post("/work_pools", json={"name": "etl", "type": "process"})
    response = client.post(
        "/deployments",
        json={"name": "n", "flow_name": "etl", "work_pool_name": "etl", "work_queue_name": "q"},
    )
    assert response.status_code == 404
    assert "headwater work-queue create q --pool etl" in response.json()["message"]


def test_default_parameters_are_checked_against_the_schema(client: TestClient) -> None:
    response = client.post(
        "/deployments",
        json={
            "name": "n",
            "flow_name": "etl",
            "parameter_schema": SCHEMA,
            "parameters": {"n": "three"},
        },
    )

    assert response.status_code == 422
    assert "'n'" in response.json()["message"]
    assert client.get("/deployments").json()["total"] == 0


def test_a_run_gets_the_defaults_and_is_checked_against_the_schema(client: TestClient) -> None:
    deployment = _deploy(client)
    url = f"/deployments/{deployment['id']}/create_flow_run"

    missing = client.post(url, json={"parameters": {}})
    wrong = client.post(url, json={"parameters": {"day": "mon", "n": "x"}})
    run = client.post(url, json={"parameters": {"day": "mon"}, "tags": ["manual"]})

    assert missing.status_code == 422
    assert "'day' is a required property" in missing.json()["message"]
    assert wrong.status_code == 422 and "'n'" in wrong.json()["message"]
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["parameters"] == {"n": 3, "day": "mon"}
    assert (body["state_type"], body["state_name"]) == ("SCHEDULED", "Scheduled")
    assert body["deployment_id"] == deployment["id"]
    assert body["tags"] == ["manual"]
    assert client.get("/flow_runs", params={"deployment_id": deployment["id"]}).json()["total"] == 1


def test_an_unenforced_schema_lets_any_parameters_through(client: TestClient) -> None:
    deployment = _deploy(client, enforce_parameter_schema=False)
    response = client.post(
        f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": {"n": "x"}}
    )
    assert response.status_code == 201


def test_an_idempotency_key_creates_one_run(client: TestClient) -> None:
    deployment = _deploy(client)
    url = f"/deployments/{deployment['id']}/create_flow_run"
    body = {"parameters": {"day": "mon"}, "idempotency_key": "mon-report"}

    first = client.post(url, json=body)
    second = client.post(url, json=body)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert client.get("/flow_runs", params={"deployment_id": deployment["id"]}).json()["total"] == 1


def test_scheduled_time_sets_when_the_run_is_due(client: TestClient) -> None:
    deployment = _deploy(client)
    due = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    run = client.post(
        f"/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"day": "d"}, "scheduled_time": due.isoformat()},
    ).json()
    assert dt.datetime.fromisoformat(run["expected_start_time"]) == due


def test_update_pause_resume_and_clear_the_concurrency_limit(client: TestClient) -> None:
    deployment = _deploy(client, concurrency_limit=2)
    url = f"/deployments/{deployment['id']}"

    changed = client.patch(url, json={"description": "daily", "collision_strategy": "CANCEL_NEW"})
    paused = client.post(f"{url}/pause")
    resumed = client.post(f"{url}/resume")
    cleared = client.patch(url, json={"concurrency_limit": 0})

    assert changed.json()["description"] == "daily"
    assert changed.json()["collision_strategy"] == "CANCEL_NEW"
    assert paused.json()["paused"] is True
    assert resumed.json()["paused"] is False
    assert cleared.json()["concurrency_limit"] is None
    bad = client.patch(url, json={"parameters": {"n": "x"}})
    assert bad.status_code == 422
    assert client.get(url).json()["parameters"] == {"n": 3}


def test_schedules_are_added_changed_and_removed(client: TestClient) -> None:
    deployment = _deploy(
        client, schedules=[{"schedule": {"cron": "0 2 * * *", "timezone": "Europe/Paris"}}]
    )
    url = f"/deployments/{deployment['id']}/schedules"
    assert deployment["schedules"][0]["schedule"]["cron"] == "0 2 * * *"

    added = client.post(url, json={"schedule": {"interval": 3600}, "catchup": "LATEST"})
    assert added.status_code == 201, added.text
    schedule_id = added.json()["id"]
    changed = client.patch(f"{url}/{schedule_id}", json={"active": False})
    assert changed.json()["active"] is False
    assert len(client.get(url).json()) == 2
    assert client.delete(f"{url}/{schedule_id}").status_code == 204
    assert [s["schedule"] for s in client.get(url).json()] == [
        {"cron": "0 2 * * *", "timezone": "Europe/Paris", "day_or": True}
    ]
    bad = client.post(url, json={"schedule": {"cron": "every day"}})
    assert bad.status_code == 422


def test_sending_a_deployment_again_replaces_its_schedules_only_if_they_changed(
    client: TestClient,
) -> None:
    schedules = [{"schedule": {"interval": 60}}, {"schedule": {"interval": 120}}]
    first = _deploy(client, schedules=schedules)
    same = _deploy(client, schedules=list(reversed(schedules)))
    changed = _deploy(client, schedules=[{"schedule": {"interval": 30}}])

    assert {s["id"] for s in same["schedules"]} == {s["id"] for s in first["schedules"]}
    assert same["updated"] == first["updated"]  # catch-up counts from here: kept
    assert [s["schedule"]["interval"] for s in changed["schedules"]] == [30]


def test_delete_removes_the_runs_not_yet_started(client: TestClient) -> None:
    deployment = _deploy(client)
    run = client.post(
        f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": {"day": "d"}}
    ).json()

    assert client.delete(f"/deployments/{deployment['id']}").status_code == 204

    assert client.get(f"/deployments/{deployment['id']}").status_code == 404
    assert client.get(f"/flow_runs/{run['id']}").status_code == 404
    missing = client.get("/deployments/name/etl/nightly")
    assert missing.status_code == 404
    assert "headwater deployment ls" in missing.json()["message"]
