"""Pause, resume and flow run inputs through the API: the orchestration rules of pausing."""

from __future__ import annotations

import threading
import time
from typing import Any

from .conftest import TestClient

SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string", "default": ""}},
    "required": ["approved"],
    "additionalProperties": False,
}


def _running_run(client: TestClient, deployment: bool = False) -> str:
    """A Running run: of a deployment (claimed and begun), or created directly."""
    if not deployment:
        body = {"flow_name": "etl", "state": {"type": "RUNNING"}}
        return str(client.post("/flow_runs", json=body).json()["id"])
    client.post("/work_pools", json={"name": "etl", "type": "process"})
    found = client.post(
        "/deployments", json={"name": "d", "flow_name": "etl", "work_pool_name": "etl"}
    ).json()
    run_id = str(client.post(f"/deployments/{found['id']}/create_flow_run", json={}).json()["id"])
    worker = client.post("/work_pools/etl/workers/heartbeat", json={"name": "w"}).json()["id"]
    claimed = client.post(
        "/work_pools/etl/get_scheduled_flow_runs", json={"worker_id": worker}
    ).json()
    token = claimed["flow_runs"][0]["claim_token"]
    begun = client.post(f"/flow_runs/{run_id}/begin", json={"claim_token": token})
    assert begun.status_code == 200, begun.text
    return run_id


def _pause(client: TestClient, run_id: str, **body: Any) -> Any:
    return client.post(f"/flow_runs/{run_id}/pause", json={"key": "0", **body})


def _states(client: TestClient, run_id: str) -> list[tuple[str, str]]:
    return [(s["type"], s["name"]) for s in client.get(f"/flow_runs/{run_id}/states").json()]


def test_pause_with_a_schema_then_resume_with_valid_input(client: TestClient) -> None:
    run_id = _running_run(client)

    paused = _pause(client, run_id, input_schema=SCHEMA, description="Ship it?", timeout_seconds=60)
    schema = client.get(f"/flow_runs/{run_id}/input_schema")
    bad = client.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": "yes"}})
    missing = client.post(f"/flow_runs/{run_id}/resume", json={})
    still = client.get(f"/flow_runs/{run_id}").json()
    resumed = client.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": True}})
    info = client.get(f"/flow_runs/{run_id}/pause").json()

    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["state_name"]) == (True, "Paused")
    assert schema.json() == SCHEMA
    assert bad.status_code == 422
    assert "field 'approved'" in bad.json()["message"]
    assert "boolean" in bad.json()["message"]
    assert missing.status_code == 422
    assert "waits for input (fields: approved, note)" in missing.json()["message"]
    assert still["state_type"] == "PAUSED"
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state_type"] == "RUNNING"
    run = client.get(f"/flow_runs/{run_id}").json()
    assert run["run_count"] == 1  # the same attempt goes on
    assert info["run_input"] == {"approved": True}
    assert info["description"] == "Ship it?"
    assert _states(client, run_id)[-2:] == [("PAUSED", "Paused"), ("RUNNING", "Running")]


def test_a_pause_key_fires_once_per_run(client: TestClient) -> None:
    run_id = _running_run(client)
    _pause(client, run_id, input_schema=SCHEMA)
    client.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": False}})

    again = _pause(client, run_id, input_schema=SCHEMA)
    other = _pause(client, run_id, key="second")

    assert again.json()["paused"] is False
    assert again.json()["run_input"] == {"approved": False}
    assert other.json()["paused"] is True


def test_only_running_runs_pause_and_only_paused_runs_resume(client: TestClient) -> None:
    run_id = _running_run(client)
    not_paused = client.post(f"/flow_runs/{run_id}/resume", json={})
    _pause(client, run_id)
    twice = _pause(client, run_id, key="other")
    no_input_wanted = client.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"a": 1}})
    missing = client.post("/flow_runs/0190d8a3c2a17c4f8a8c2a1b3c4d5e6f/resume", json={})

    assert not_paused.status_code == 409
    assert "is RUNNING, not PAUSED" in not_paused.json()["message"]
    assert twice.status_code == 409
    assert "is PAUSED, not RUNNING" in twice.json()["message"]
    assert no_input_wanted.status_code == 422
    assert "does not wait for input" in no_input_wanted.json()["message"]
    assert missing.status_code == 404


def test_a_run_without_a_deployment_cannot_suspend(client: TestClient) -> None:
    run_id = _running_run(client)
    refused = _pause(client, run_id, suspend=True)
    assert refused.status_code == 409
    assert "not a run of a deployment" in refused.json()["message"]


def test_resuming_a_suspended_run_schedules_it_again(client: TestClient) -> None:
    run_id = _running_run(client, deployment=True)

    suspended = _pause(client, run_id, suspend=True, input_schema=SCHEMA)
    exited = client.post(f"/flow_runs/{run_id}/exited", json={"exit_code": 1})
    resumed = client.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": True}})
    worker = client.post("/work_pools/etl/workers/heartbeat", json={"name": "w2"}).json()["id"]
    claimed = client.post(
        "/work_pools/etl/get_scheduled_flow_runs", json={"worker_id": worker}
    ).json()
    token = claimed["flow_runs"][0]["claim_token"]
    begun = client.post(f"/flow_runs/{run_id}/begin", json={"claim_token": token}).json()
    again = _pause(client, run_id, suspend=True, input_schema=SCHEMA)

    assert suspended.json()["state_name"] == "Suspended"
    # The process of a suspended run exits: the run is left alone, not Crashed.
    assert (exited.json()["state_type"], exited.json()["state_name"]) == ("PAUSED", "Suspended")
    assert (resumed.json()["state_type"], resumed.json()["state_name"]) == (
        "SCHEDULED",
        "Resuming",
    )
    assert [item["flow_run"]["id"] for item in claimed["flow_runs"]] == [run_id]
    assert begun["state_type"] == "RUNNING"
    assert (again.json()["paused"], again.json()["run_input"]) == (False, {"approved": True})


def test_an_expired_pause_cannot_be_resumed_and_fails_the_run(client: TestClient) -> None:
    run_id = _running_run(client)
    _pause(client, run_id, timeout_seconds=0.05)
    time.sleep(0.1)

    late = client.post(f"/flow_runs/{run_id}/resume", json={})

    assert late.status_code == 409
    assert "not resumed within its timeout of 0.05 second(s)" in late.json()["message"]
    run = client.get(f"/flow_runs/{run_id}").json()
    assert run["state_type"] == "FAILED"


def test_waiting_for_a_pause_returns_when_the_run_is_resumed(client: TestClient) -> None:
    run_id = _running_run(client)
    _pause(client, run_id)
    timer = threading.Timer(0.3, lambda: client.post(f"/flow_runs/{run_id}/resume", json={}))
    timer.start()
    started = time.monotonic()

    info = client.get(f"/flow_runs/{run_id}/pause", params={"wait": 20}).json()

    timer.join()
    assert info["state_type"] == "RUNNING"
    assert time.monotonic() - started < 5


def test_bad_pause_requests_are_422(client: TestClient) -> None:
    run_id = _running_run(client)
    not_a_schema = _pause(client, run_id, input_schema={"type": "no-such-type"})
    bad_key = _pause(client, run_id, key="a b")
    assert not_a_schema.status_code == 422
    assert "not a valid JSON schema" in not_a_schema.json()["message"]
    assert bad_key.status_code == 422
    assert client.get(f"/flow_runs/{run_id}").json()["state_type"] == "RUNNING"


def test_inputs_are_stored_listed_and_deleted(client: TestClient) -> None:
    run_id = _running_run(client)

    first = client.post(
        f"/flow_runs/{run_id}/input", json={"key": "greeting-1", "value": {"text": "hi"}}
    )
    duplicate = client.post(f"/flow_runs/{run_id}/input", json={"key": "greeting-1", "value": 1})
    reserved = client.post(f"/flow_runs/{run_id}/input", json={"key": "paused-x", "value": 1})
    client.post(
        f"/flow_runs/{run_id}/input", json={"key": "greeting-2", "value": 2, "sender": "me"}
    )
    client.post(f"/flow_runs/{run_id}/input", json={"key": "other", "value": 3})
    found = client.post(
        f"/flow_runs/{run_id}/input/filter",
        json={"prefix": "greeting", "exclude_keys": ["greeting-1"]},
    ).json()
    read = client.get(f"/flow_runs/{run_id}/input/greeting-1").json()
    deleted = client.delete(f"/flow_runs/{run_id}/input/greeting-1")
    gone = client.get(f"/flow_runs/{run_id}/input/greeting-1")

    assert first.status_code == 201, first.text
    assert duplicate.status_code == 409
    assert "already has an input with key 'greeting-1'" in duplicate.json()["message"]
    assert reserved.status_code == 422
    assert [(i["key"], i["value"], i["sender"]) for i in found] == [("greeting-2", 2, "me")]
    assert read["value"] == {"text": "hi"}
    assert deleted.status_code == 204
    assert gone.status_code == 404


def test_a_waiting_filter_returns_when_an_input_arrives(client: TestClient) -> None:
    run_id = _running_run(client)
    timer = threading.Timer(
        0.3,
        lambda: client.post(f"/flow_runs/{run_id}/input", json={"key": "n-1", "value": 1}),
    )
    timer.start()
    started = time.monotonic()

    found = client.post(
        f"/flow_runs/{run_id}/input/filter", json={"prefix": "n-", "wait": 20}
    ).json()

    timer.join()
    assert [item["key"] for item in found] == ["n-1"]
    assert time.monotonic() - started < 5


def test_a_suspended_run_past_its_timeout_is_failed_by_the_services(
    client: TestClient, database_url: str
) -> None:
    from headwater.server.services import run_once

    run_id = _running_run(client, deployment=True)
    other = _running_run(client)
    _pause(client, run_id, suspend=True, timeout_seconds=30)
    _pause(client, other, timeout_seconds=3600)

    soon = run_once(database_url, now=time.time() + 10) or {}
    later = run_once(database_url, now=time.time() + 60) or {}

    assert (soon["expired_pauses"], later["expired_pauses"]) == (0, 1)
    run = client.get(f"/flow_runs/{run_id}").json()
    assert run["state_type"] == "FAILED"
    assert "not resumed within its timeout of 30 second(s)" in run["state_message"]
    assert client.get(f"/flow_runs/{other}").json()["state_type"] == "PAUSED"
