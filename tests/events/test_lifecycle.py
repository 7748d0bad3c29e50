"""Run state changes become `headwater.flow-run.*` / `headwater.task-run.*` events."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from tests.server.helpers import listen_to_every_event

from headwater import flow, tags, task
from headwater.client._encoding import batch_payload, dumps
from headwater.core.ids import uuid7_hex
from headwater.core.records import Batch
from headwater.core.states import StateType
from headwater.engine.recorder import get_recorder
from headwater.store import tables

from .conftest import TestClient


def _events(client: TestClient, **query: Any) -> list[dict[str, Any]]:
    answer = client.post("/events/filter", json={"limit": 1000, "order": "asc", **query})
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def _related(event: dict[str, Any], role: str) -> list[dict[str, str]]:
    return [r for r in event["related"] if r["headwater.resource.role"] == role]


def test_an_embedded_flow_run_emits_flow_and_task_run_events(
    embedded: str, client: TestClient
) -> None:
    @task(tags=["db"])
    def load(x: int) -> int:
        return x

    @flow(name="nightly-etl")
    def etl() -> int:
        return load(1) + load(2)

    with tags("prod"):
        etl()
    get_recorder().flush()

    run_events = _events(client, event=["headwater.flow-run.*"])
    assert [e["event"] for e in run_events] == [
        "headwater.flow-run.Pending",
        "headwater.flow-run.Running",
        "headwater.flow-run.Completed",
    ]
    completed = run_events[-1]
    assert completed["resource"]["headwater.state-type"] == "COMPLETED"
    assert completed["resource"]["headwater.state-name"] == "Completed"
    assert completed["resource"]["headwater.resource.id"].startswith("headwater.flow-run.")
    [flow_resource] = _related(completed, "flow")
    assert flow_resource["headwater.resource.name"] == "nightly-etl"
    assert [t["headwater.resource.id"] for t in _related(completed, "tag")] == [
        "headwater.tag.prod"
    ]
    assert completed["payload"]["validated_state"]["type"] == "COMPLETED"

    task_events = _events(client, event=["headwater.task-run.*"])
    assert {e["event"] for e in task_events} >= {
        "headwater.task-run.Running",
        "headwater.task-run.Completed",
    }
    assert len({e["resource"]["headwater.resource.id"] for e in task_events}) == 2
    first = task_events[0]
    [parent] = _related(first, "flow-run")
    assert parent["headwater.resource.id"] == completed["resource"]["headwater.resource.id"]
    assert _related(first, "flow")[0]["headwater.resource.name"] == "nightly-etl"
    assert "headwater.tag.db" in {t["headwater.resource.id"] for t in _related(first, "tag")}


def _remote_batch() -> tuple[Batch, str, str]:
    flow_id, run_id, task_id = uuid7_hex(), uuid7_hex(), uuid7_hex()
    now = 1_700_000_000.0
    flow_row = (flow_id, "remote-flow", now)
    run = (
        run_id,
        flow_id,
        "calm-heron",
        StateType.COMPLETED,
        "Completed",
        None,
        now + 2,
        {},
        ["x"],
        1,
        None,
        None,
        None,
        None,
        now,
        now,
        now + 2,
        now,
        now + 2,
        None,
    )
    task_row = (
        task_id,
        run_id,
        "k",
        "0",
        "step-0",
        StateType.COMPLETED,
        "Completed",
        None,
        now + 1,
        [],
        1,
        {},
        now,
        now + 1,
        now,
        now + 1,
    )
    states = [
        (uuid7_hex(), run_id, None, StateType.RUNNING, "Running", None, now),
        (uuid7_hex(), run_id, task_id, StateType.COMPLETED, "Completed", None, now + 1),
        (uuid7_hex(), run_id, None, StateType.COMPLETED, "Completed", None, now + 2),
    ]
    batch = Batch(
        flows={flow_id: flow_row},
        flow_runs={run_id: run},
        task_runs={task_id: task_row},
        states=states,
    )
    return batch, run_id, task_id


def test_a_remote_batch_emits_events_once_however_often_it_is_sent(
    client: TestClient, engine: sa.Engine
) -> None:
    listen_to_every_event(client)
    batch, _run_id, task_id = _remote_batch()
    body = dumps(batch_payload(batch))
    for _ in range(2):
        answer = client.post("/records", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 200, answer.text

    events = _events(client)
    assert [e["event"] for e in events] == [
        "headwater.flow-run.Running",
        "headwater.task-run.Completed",
        "headwater.flow-run.Completed",
    ]
    assert (
        events[1]["resource"]["headwater.resource.id"] == f"headwater.task-run.{uuid.UUID(task_id)}"
    )
    assert events[1]["resource"]["headwater.resource.name"] == "step-0"
    assert _related(events[0], "flow")[0]["headwater.resource.name"] == "remote-flow"
    with engine.connect() as conn:
        inbox = conn.execute(sa.select(sa.func.count()).select_from(tables.event_inbox))
        assert inbox.scalar_one() == 3


def _setup(client: TestClient) -> tuple[dict[str, Any], str]:
    assert client.post("/work_pools", json={"name": "etl", "type": "process"}).status_code == 201
    deployment: dict[str, Any] = client.post(
        "/deployments", json={"name": "daily", "flow_name": "etl", "work_pool_name": "etl"}
    ).json()
    worker = client.post("/work_pools/etl/workers/heartbeat", json={"name": "w1"}).json()["id"]
    return deployment, str(worker)


def test_server_side_transitions_emit_events_with_deployment_and_pool(
    client: TestClient,
) -> None:
    deployment, worker = _setup(client)
    run = client.post(f"/deployments/{deployment['id']}/create_flow_run", json={}).json()
    claimed = client.post(
        "/work_pools/etl/get_scheduled_flow_runs", json={"worker_id": worker}
    ).json()
    token = claimed["flow_runs"][0]["claim_token"]
    assert client.post(f"/flow_runs/{run['id']}/begin", json={"claim_token": token}).is_success
    assert client.post(f"/flow_runs/{run['id']}/cancel").is_success

    resource_id = f"headwater.flow-run.{run['id']}"
    events = _events(client, resource_id=[resource_id])
    assert [e["event"] for e in events] == [
        "headwater.flow-run.Scheduled",
        "headwater.flow-run.Pending",
        "headwater.flow-run.Running",
        "headwater.flow-run.Cancelling",
    ]
    for event in events:
        [related] = _related(event, "deployment")
        assert related["headwater.resource.id"] == f"headwater.deployment.{deployment['id']}"
        assert related["headwater.resource.name"] == "daily"
        [pool] = _related(event, "work-pool")
        assert pool["headwater.resource.name"] == "etl"
        assert _related(event, "work-queue")
    assert (
        _events(client, related_id=[f"headwater.deployment.{deployment['id']}"])[0]["id"]
        == (events[0]["id"])
    )
