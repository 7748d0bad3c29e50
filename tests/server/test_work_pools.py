"""Work pools, queues and worker heartbeats through the API, on each database."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.server.database import Database
from headwater.server.repositories.deployment_runs import DeploymentTarget, NewRun, insert_runs
from headwater.store.tables import deployment, flow, flow_run, flow_run_queue, worker
from headwater.worker.infrastructure import default_base_job_template

from .conftest import TestClient

CUSTOM_TEMPLATE = {
    "job_configuration": {"image": "{{ image }}", "command": "run {{ image }} now"},
    "variables": {
        "type": "object",
        "properties": {"image": {"type": "string", "default": "python:3.12"}},
    },
}


def _db(client: TestClient) -> Database:
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    return database


def _deploy(
    client: TestClient, pool: dict[str, Any], name: str, queue_id: str | None = None
) -> DeploymentTarget:
    """A deployment of flow "etl" in `pool` (written as the deployments API writes it)."""
    db = _db(client)
    with db.write() as conn:
        flow_id = conn.execute(sa.select(flow.c.id).where(flow.c.name == "etl")).scalar()
        if flow_id is None:
            flow_id = uuid7()
            conn.execute(sa.insert(flow).values(id=flow_id, name="etl", created=time.time()))
        target = DeploymentTarget(
            id=uuid7(),
            flow_id=flow_id,
            work_pool_id=uuid.UUID(pool["id"]),
            work_queue_id=uuid.UUID(queue_id or pool["default_queue_id"]),
            tags=[],
        )
        conn.execute(
            sa.insert(deployment).values(
                id=target.id,
                flow_id=flow_id,
                name=name,
                parameters={},
                parameter_schema={},
                enforce_parameter_schema=False,
                tags=[],
                work_pool_id=target.work_pool_id,
                work_queue_id=target.work_queue_id,
                job_variables={},
                collision_strategy="ENQUEUE",
                paused=False,
                created=time.time(),
                updated=time.time(),
            )
        )
    return target


def _queue_run(client: TestClient, target: DeploymentTarget) -> uuid.UUID:
    with _db(client).write() as conn:
        (run_id,) = insert_runs(conn, [NewRun(target, time.time(), {}, "waiting")])
    return run_id


# -- Pools ---------------------------------------------------------------------------------


def test_a_new_pool_has_the_process_template_and_a_default_queue(client: TestClient) -> None:
    created = client.post("/work_pools", json={"name": "etl", "description": "Nightly ETL"})

    assert created.status_code == 201
    pool = created.json()
    assert (pool["name"], pool["type"], pool["description"]) == ("etl", "process", "Nightly ETL")
    assert pool["base_job_template"] == default_base_job_template("process")
    assert (pool["paused"], pool["concurrency_limit"], pool["status"]) == (False, None, "NOT_READY")
    queues = client.get("/work_pools/etl/queues").json()
    assert [(q["name"], q["priority"], q["id"]) for q in queues] == [
        ("default", 1, pool["default_queue_id"])
    ]
    assert client.get("/work_pools/etl").json() == pool


def test_pool_creation_errors_name_the_value_and_the_fix(client: TestClient) -> None:
    client.post("/work_pools", json={"name": "etl"})

    again = client.post("/work_pools", json={"name": "etl"})
    assert again.status_code == 409
    assert "work pool named 'etl' already exists" in again.json()["message"]

    unknown = client.post("/work_pools", json={"name": "k8s", "type": "kubernetes"})
    assert unknown.status_code == 422
    assert "Unknown work pool type 'kubernetes'; known types: process" in unknown.json()["message"]

    slash = client.post("/work_pools", json={"name": "a/b"})
    assert slash.status_code == 422
    assert "'a/b' contains '/'" in slash.json()["message"]

    broken = {"job_configuration": {"cmd": "{{ command }}"}, "variables": {"properties": {}}}
    response = client.post("/work_pools", json={"name": "x", "base_job_template": broken})
    assert response.status_code == 422
    assert "job_configuration.cmd uses {{ command }}" in response.json()["message"]

    negative = client.post("/work_pools", json={"name": "x", "concurrency_limit": -1})
    assert negative.status_code == 422
    assert "concurrency_limit" in negative.json()["message"]


def test_a_pool_of_any_type_may_bring_its_own_template(client: TestClient) -> None:
    response = client.post(
        "/work_pools",
        json={"name": "gpu", "type": "docker", "base_job_template": CUSTOM_TEMPLATE},
    )
    assert response.status_code == 201
    assert response.json()["base_job_template"] == CUSTOM_TEMPLATE


def test_pools_are_listed_by_name_and_an_unknown_one_says_how_to_create_it(
    client: TestClient,
) -> None:
    for name in ("zeta", "alpha", "mid"):
        client.post("/work_pools", json={"name": name})

    page = client.get("/work_pools", params={"limit": 2}).json()
    assert [p["name"] for p in page["items"]] == ["alpha", "mid"]
    assert page["total"] == 3

    missing = client.get("/work_pools/nightly")
    assert missing.status_code == 404
    assert missing.json()["message"] == (
        "No work pool named 'nightly'; create it with "
        "`headwater work-pool create nightly --type process`."
    )


def test_update_pause_and_resume_a_pool(client: TestClient) -> None:
    client.post("/work_pools", json={"name": "etl"})

    limited = client.patch("/work_pools/etl", json={"concurrency_limit": 3}).json()
    assert limited["concurrency_limit"] == 3
    assert client.post("/work_pools/etl/pause").json()["status"] == "PAUSED"
    assert client.get("/work_pools/etl").json()["paused"] is True
    resumed = client.post("/work_pools/etl/resume").json()
    assert (resumed["paused"], resumed["status"], resumed["concurrency_limit"]) == (
        False,
        "NOT_READY",
        3,
    )
    cleared = client.patch("/work_pools/etl", json={"concurrency_limit": None}).json()
    assert cleared["concurrency_limit"] is None
    templated = client.patch("/work_pools/etl", json={"base_job_template": CUSTOM_TEMPLATE})
    assert templated.json()["base_job_template"] == CUSTOM_TEMPLATE

    assert client.patch("/work_pools/etl", json={"paused": None}).status_code == 422
    assert client.patch("/work_pools/etl", json={"type": "docker"}).status_code == 422
    assert client.patch("/work_pools/etl", json={"base_job_template": []}).status_code == 422
    assert client.post("/work_pools/other/pause").status_code == 404


def test_a_pool_in_use_is_not_deleted_and_the_message_names_the_deployments(
    client: TestClient,
) -> None:
    pool = client.post("/work_pools", json={"name": "etl"}).json()
    _deploy(client, pool, "nightly")
    _deploy(client, pool, "hourly")

    response = client.delete("/work_pools/etl")

    assert response.status_code == 409
    assert response.json()["message"] == (
        "Work pool 'etl' is used by 2 deployments (etl/hourly, etl/nightly); point them at "
        "another pool or delete them first."
    )
    assert client.get("/work_pools/etl").status_code == 200


def test_deleting_a_pool_deletes_its_queues_and_workers_and_cancels_waiting_runs(
    client: TestClient,
) -> None:
    pool = client.post("/work_pools", json={"name": "etl"}).json()
    client.post("/work_pools/etl/queues", json={"name": "urgent"})
    client.post("/work_pools/etl/workers/heartbeat", json={"name": "w-1"})
    target = _deploy(client, pool, "nightly")
    waiting = _queue_run(client, target)
    with _db(client).write() as conn:  # the deployment moved to another pool since
        conn.execute(sa.delete(deployment).where(deployment.c.id == target.id))

    assert client.delete("/work_pools/etl").status_code == 204

    assert client.get("/work_pools/etl").status_code == 404
    with _db(client).read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(worker)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(flow_run_queue)).scalar() == 0
    run = client.get(f"/flow_runs/{waiting}").json()
    assert run["state_type"] == "CANCELLED"
    assert run["state_message"] == "Work pool 'etl' was deleted while the run waited in it."
    client.post("/work_pools", json={"name": "etl"})
    assert [q["name"] for q in client.get("/work_pools/etl/queues").json()] == ["default"]


def test_work_pool_types_lists_process_with_its_template(client: TestClient) -> None:
    types = client.get("/work_pool_types").json()
    assert {"type": "process", "base_job_template": default_base_job_template("process")} in types


# -- Queues --------------------------------------------------------------------------------


def test_queues_are_served_by_priority_and_new_ones_come_last(client: TestClient) -> None:
    client.post("/work_pools", json={"name": "etl"})

    urgent = client.post("/work_pools/etl/queues", json={"name": "urgent", "priority": 1})
    low = client.post(
        "/work_pools/etl/queues", json={"name": "low", "concurrency_limit": 2, "paused": True}
    )

    assert urgent.status_code == low.status_code == 201
    assert low.json()["priority"] == 2
    assert (low.json()["concurrency_limit"], low.json()["paused"]) == (2, True)
    listed = client.get("/work_pools/etl/queues").json()
    assert [(q["name"], q["priority"]) for q in listed] == [
        ("default", 1),
        ("urgent", 1),
        ("low", 2),
    ]
    assert client.get("/work_pools/etl/queues/low").json() == low.json()


def test_update_pause_and_resume_a_queue(client: TestClient) -> None:
    client.post("/work_pools", json={"name": "etl"})
    client.post("/work_pools/etl/queues", json={"name": "low"})

    changed = client.patch(
        "/work_pools/etl/queues/low", json={"priority": 5, "concurrency_limit": 1}
    ).json()
    assert (changed["priority"], changed["concurrency_limit"]) == (5, 1)
    assert client.post("/work_pools/etl/queues/low/pause").json()["paused"] is True
    assert client.post("/work_pools/etl/queues/low/resume").json()["paused"] is False
    assert client.patch("/work_pools/etl/queues/low", json={"priority": 0}).status_code == 422
    assert client.patch("/work_pools/etl/queues/low", json={"priority": None}).status_code == 422


def test_queue_errors_name_the_value_and_the_fix(client: TestClient) -> None:
    client.post("/work_pools", json={"name": "etl"})
    client.post("/work_pools/etl/queues", json={"name": "low"})

    again = client.post("/work_pools/etl/queues", json={"name": "low"})
    assert again.status_code == 409
    assert "Work pool 'etl' already has a queue named 'low'" in again.json()["message"]

    missing = client.get("/work_pools/etl/queues/urgent")
    assert missing.status_code == 404
    assert missing.json()["message"] == (
        "No work queue named 'urgent' in work pool 'etl'; create it with "
        "`headwater work-queue create urgent --pool etl`."
    )
    no_pool = client.post("/work_pools/nope/queues", json={"name": "q"})
    assert no_pool.status_code == 404
    assert "No work pool named 'nope'" in no_pool.json()["message"]

    zero = client.post("/work_pools/etl/queues", json={"name": "q", "priority": 0})
    assert zero.status_code == 422
    assert "priority" in zero.json()["message"]

    default = client.delete("/work_pools/etl/queues/default")
    assert default.status_code == 409
    assert "cannot be deleted" in default.json()["message"]


def test_deleting_a_queue_moves_its_waiting_runs_to_the_default_queue(client: TestClient) -> None:
    pool = client.post("/work_pools", json={"name": "etl"}).json()
    urgent = client.post("/work_pools/etl/queues", json={"name": "urgent"}).json()
    target = _deploy(client, pool, "nightly", queue_id=urgent["id"])
    waiting = _queue_run(client, target)

    in_use = client.delete("/work_pools/etl/queues/urgent")
    assert in_use.status_code == 409
    assert "used by 1 deployment (etl/nightly)" in in_use.json()["message"]

    with _db(client).write() as conn:
        conn.execute(sa.delete(deployment).where(deployment.c.id == target.id))
    assert client.delete("/work_pools/etl/queues/urgent").status_code == 204

    assert [q["name"] for q in client.get("/work_pools/etl/queues").json()] == ["default"]
    with _db(client).read() as conn:
        queued = conn.execute(
            sa.select(flow_run_queue.c.work_queue_id).where(flow_run_queue.c.flow_run_id == waiting)
        ).scalar_one()
        on_run = conn.execute(
            sa.select(flow_run.c.work_queue_id).where(flow_run.c.id == waiting)
        ).scalar_one()
    assert str(queued) == str(on_run) == pool["default_queue_id"]


# -- Workers -------------------------------------------------------------------------------


def test_heartbeats_register_a_worker_once_and_make_the_pool_ready(client: TestClient) -> None:
    client.post("/work_pools", json={"name": "etl"})

    first = client.post(
        "/work_pools/etl/workers/heartbeat", json={"name": "host-1 4242", "heartbeat_interval": 5}
    )
    second = client.post(
        "/work_pools/etl/workers/heartbeat", json={"name": "host-1 4242", "heartbeat_interval": 5}
    )

    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["last_heartbeat"] >= first.json()["last_heartbeat"]
    workers = client.get("/work_pools/etl/workers").json()
    assert [(w["name"], w["status"], w["work_pool_name"]) for w in workers] == [
        ("host-1 4242", "ONLINE", "etl")
    ]
    assert client.get("/work_pools/etl").json()["status"] == "READY"


def test_a_worker_that_missed_three_heartbeats_is_offline(client: TestClient) -> None:
    pool = client.post("/work_pools", json={"name": "etl"}).json()
    with _db(client).write() as conn:
        for name, age in (("w-silent", 31.0), ("w-late", 29.0)):
            conn.execute(
                sa.insert(worker).values(
                    id=uuid7(),
                    work_pool_id=uuid.UUID(pool["id"]),
                    name=name,
                    heartbeat_interval=10.0,
                    last_heartbeat=time.time() - age,
                    created=time.time() - 3600,
                )
            )

    workers = client.get("/work_pools/etl/workers").json()

    assert {w["name"]: w["status"] for w in workers} == {
        "w-late": "ONLINE",
        "w-silent": "OFFLINE",
    }


def test_serve_processes_heartbeat_without_a_pool(client: TestClient) -> None:
    response = client.post("/workers/heartbeat", json={"name": "serve nightly"})

    assert response.status_code == 200
    body = response.json()
    assert (body["work_pool_id"], body["heartbeat_interval"], body["status"]) == (
        None,
        30.0,
        "ONLINE",
    )
    again = client.post("/workers/heartbeat", json={"name": "serve nightly"}).json()
    assert again["id"] == body["id"]


@pytest.mark.parametrize("interval", [0, -1, 86_401, "often"])
def test_a_bad_heartbeat_interval_is_refused(client: TestClient, interval: object) -> None:
    client.post("/work_pools", json={"name": "etl"})
    response = client.post(
        "/work_pools/etl/workers/heartbeat", json={"name": "w", "heartbeat_interval": interval}
    )
    assert response.status_code == 422
    assert "heartbeat_interval" in response.json()["message"]


def test_a_heartbeat_for_an_unknown_pool_says_how_to_create_it(client: TestClient) -> None:
    response = client.post("/work_pools/etl/workers/heartbeat", json={"name": "w"})
    assert response.status_code == 404
    assert "headwater work-pool create etl --type process" in response.json()["message"]
