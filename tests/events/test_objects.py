"""Deployments, work pools, work queues and workers emit lifecycle events."""

from __future__ import annotations

from typing import Any

from .conftest import TestClient


def _names(client: TestClient, prefix: str) -> list[str]:
    answer = client.post("/events/filter", json={"event": [prefix], "order": "asc"})
    return [e["event"] for e in answer.json()["events"]]


def _event(client: TestClient, name: str) -> dict[str, Any]:
    [found] = client.post("/events/filter", json={"event": [name]}).json()["events"]
    return dict(found)


def test_work_pool_queue_and_worker_events(client: TestClient) -> None:
    pool = client.post("/work_pools", json={"name": "etl", "type": "process"}).json()
    client.post("/work_pools/etl/pause")
    client.post("/work_pools/etl/resume")
    client.patch("/work_pools/etl", json={"description": "nightly"})
    client.post("/work_pools/etl/queues", json={"name": "urgent"})
    client.post("/work_pools/etl/queues/urgent/pause")
    client.delete("/work_pools/etl/queues/urgent")
    client.post("/work_pools/etl/workers/heartbeat", json={"name": "w1"})
    client.post("/work_pools/etl/workers/heartbeat", json={"name": "w1"})  # still online

    assert _names(client, "headwater.work-pool.*") == [
        "headwater.work-pool.created",
        "headwater.work-pool.paused",
        "headwater.work-pool.resumed",
        "headwater.work-pool.updated",
    ]
    assert _names(client, "headwater.work-queue.*") == [
        "headwater.work-queue.created",  # the pool's default queue
        "headwater.work-queue.created",
        "headwater.work-queue.paused",
        "headwater.work-queue.deleted",
    ]
    assert _names(client, "headwater.worker.*") == ["headwater.worker.started"]
    created = _event(client, "headwater.work-pool.created")
    assert created["resource"]["headwater.resource.id"] == f"headwater.work-pool.{pool['id']}"
    assert created["resource"]["headwater.resource.name"] == "etl"
    started = _event(client, "headwater.worker.started")
    assert started["related"][0]["headwater.resource.name"] == "etl"

    client.delete("/work_pools/etl")
    assert _names(client, "headwater.work-pool.deleted") == ["headwater.work-pool.deleted"]


def test_deployment_events(client: TestClient) -> None:
    client.post("/work_pools", json={"name": "etl", "type": "process"})
    body = {"name": "daily", "flow_name": "etl", "work_pool_name": "etl"}
    deployment = client.post("/deployments", json=body).json()
    client.post("/deployments", json=body)  # the same again: no change, no event
    client.post(f"/deployments/{deployment['id']}/pause")
    client.post(f"/deployments/{deployment['id']}/resume")
    client.patch(f"/deployments/{deployment['id']}", json={"description": "x"})
    client.delete(f"/deployments/{deployment['id']}")

    assert _names(client, "headwater.deployment.*") == [
        "headwater.deployment.created",
        "headwater.deployment.paused",
        "headwater.deployment.resumed",
        "headwater.deployment.updated",
        "headwater.deployment.deleted",
    ]
    created = _event(client, "headwater.deployment.created")
    assert created["resource"]["headwater.resource.name"] == "daily"
    roles = {r["headwater.resource.role"] for r in created["related"]}
    assert roles == {"flow", "work-pool", "work-queue"}


def test_a_worker_that_goes_silent_is_announced_stopped_once(client: TestClient) -> None:
    import time

    from headwater.server import lifecycle

    client.post("/work_pools", json={"name": "etl", "type": "process"})
    client.post("/work_pools/etl/workers/heartbeat", json={"name": "w1"})
    db = client.app.state.database  # type: ignore[attr-defined]

    lifecycle.recover_runs_of_dead_workers(db, time.time())  # still online: nothing
    assert _names(client, "headwater.worker.*") == ["headwater.worker.started"]

    later = time.time() + 3600
    lifecycle.recover_runs_of_dead_workers(db, later)
    lifecycle.recover_runs_of_dead_workers(db, later + 10)  # told once only
    assert _names(client, "headwater.worker.*") == [
        "headwater.worker.started",
        "headwater.worker.stopped",
    ]
    stopped = _event(client, "headwater.worker.stopped")
    assert stopped["resource"]["headwater.resource.name"] == "w1"
    assert stopped["related"][0]["headwater.resource.name"] == "etl"

    client.post("/work_pools/etl/workers/heartbeat", json={"name": "w1"})  # back again
    assert _names(client, "headwater.worker.*")[-1] == "headwater.worker.started"
