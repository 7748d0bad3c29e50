"""Claiming runs: due runs only, once each, within limits and priorities; begin, cancel, exit."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from typing import Any

from .conftest import MakeClient, TestClient


def _setup(client: TestClient, pool: str = "etl", **deployment: Any) -> dict[str, Any]:
    if client.get(f"/work_pools/{pool}").status_code == 404:
        assert client.post("/work_pools", json={"name": pool, "type": "process"}).status_code == 201
    body = {"name": "d", "flow_name": "etl", "work_pool_name": pool, **deployment}
    found: dict[str, Any] = client.post("/deployments", json=body).json()
    return found


def _worker(client: TestClient, pool: str = "etl", name: str = "w1") -> str:
    answer = client.post(f"/work_pools/{pool}/workers/heartbeat", json={"name": name})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _run(client: TestClient, deployment: dict[str, Any], **body: Any) -> str:
    response = client.post(f"/deployments/{deployment['id']}/create_flow_run", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _claim(client: TestClient, worker_id: str, pool: str = "etl", **body: Any) -> dict[str, Any]:
    response = client.post(
        f"/work_pools/{pool}/get_scheduled_flow_runs", json={"worker_id": worker_id, **body}
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _claimed_ids(answer: dict[str, Any]) -> list[str]:
    return [item["flow_run"]["id"] for item in answer["flow_runs"]]


def test_a_due_run_is_claimed_once_with_its_job_configuration(client: TestClient) -> None:
    deployment = _setup(client, job_variables={"env": {"STAGE": "prod"}})
    worker = _worker(client)
    run_id = _run(client, deployment, job_variables={"working_dir": "/tmp"})

    first = _claim(client, worker)
    second = _claim(client, worker)

    assert _claimed_ids(first) == [run_id]
    item = first["flow_runs"][0]
    assert item["flow_run"]["state_type"] == "PENDING"
    assert item["job_configuration"]["env"] == {"STAGE": "prod"}
    assert item["job_configuration"]["working_dir"] == "/tmp"
    assert len(item["claim_token"]) == 32
    assert second["flow_runs"] == []


def test_job_variables_the_pool_does_not_know_are_refused(client: TestClient) -> None:
    refused = client.post(
        "/deployments",
        json={"name": "d", "flow_name": "etl", "work_pool_name": "etl", "job_variables": {}},
    )
    assert refused.status_code == 404  # no pool yet
    deployment = _setup(client)

    unknown = client.post(
        f"/deployments/{deployment['id']}/create_flow_run",
        json={"job_variables": {"image": "python:3.11"}},
    )
    wrong = client.patch(
        f"/deployments/{deployment['id']}", json={"job_variables": {"env": {"A": 1}}}
    )

    assert unknown.status_code == 422 and "'image'" in unknown.json()["message"]
    assert wrong.status_code == 422 and "env.A" in wrong.json()["message"]
    assert client.get("/flow_runs").json()["total"] == 0


def test_runs_due_later_are_not_claimed(client: TestClient) -> None:
    deployment = _setup(client)
    worker = _worker(client)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    _run(client, deployment, scheduled_time=later.isoformat())

    assert _claim(client, worker)["flow_runs"] == []


def test_a_long_poll_returns_as_soon_as_a_run_is_created(client: TestClient) -> None:
    deployment = _setup(client)
    worker = _worker(client)
    answers: list[dict[str, Any]] = []
    waiting = threading.Thread(target=lambda: answers.append(_claim(client, worker, wait=20)))
    started = time.monotonic()
    waiting.start()
    time.sleep(0.3)

    run_id = _run(client, deployment)
    waiting.join(10)

    assert _claimed_ids(answers[0]) == [run_id]
    assert time.monotonic() - started < 3


def test_concurrent_claims_never_hand_out_a_run_twice(make_client: MakeClient) -> None:
    client = make_client()
    deployment = _setup(client)
    runs = {_run(client, deployment) for _ in range(40)}
    workers = [_worker(client, name=f"w{i}") for i in range(4)]
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_all(worker: str) -> None:
        while True:
            ids = _claimed_ids(_claim(client, worker, limit=3))
            if not ids:
                return
            with lock:
                claimed.extend(ids)

    threads = [threading.Thread(target=claim_all, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(claimed) == sorted(runs)


def test_begin_needs_the_current_claim_token(client: TestClient) -> None:
    deployment = _setup(client)
    worker = _worker(client)
    run_id = _run(client, deployment)
    token = _claim(client, worker)["flow_runs"][0]["claim_token"]

    stale = client.post(f"/flow_runs/{run_id}/begin", json={"claim_token": "0" * 32})
    begun = client.post(f"/flow_runs/{run_id}/begin", json={"claim_token": token, "retries": 2})
    twice = client.post(f"/flow_runs/{run_id}/begin", json={"claim_token": token})

    assert stale.status_code == 409
    assert "must not run it" in stale.json()["message"]
    assert begun.status_code == 200
    assert (begun.json()["state_type"], begun.json()["run_count"]) == ("RUNNING", 1)
    assert twice.status_code == 409


def test_a_deployment_limit_enqueues_or_cancels_new_runs(client: TestClient) -> None:
    queued = _setup(client, name="queued", concurrency_limit=1)
    cancelling = _setup(client, name="cancel", concurrency_limit=1, collision_strategy="CANCEL_NEW")
    worker = _worker(client)
    a1, a2 = _run(client, queued), _run(client, queued)
    b1, b2 = _run(client, cancelling), _run(client, cancelling)

    claimed = _claimed_ids(_claim(client, worker, limit=10))

    assert sorted(claimed) == sorted([a1, b1])
    assert client.get(f"/flow_runs/{a2}").json()["state_type"] == "SCHEDULED"
    cancelled = client.get(f"/flow_runs/{b2}").json()
    assert cancelled["state_type"] == "CANCELLED"
    assert "CANCEL_NEW" in cancelled["state_message"]
    client.post(f"/flow_runs/{a1}/exited", json={"exit_code": 0})  # a1 crashed: slot free
    assert _claimed_ids(_claim(client, worker)) == [a2]


def test_pool_and_queue_limits_pause_and_priority(client: TestClient) -> None:
    deployment = _setup(client)
    client.post("/work_pools/etl/queues", json={"name": "urgent", "priority": 1})
    client.patch("/work_pools/etl/queues/default", json={"priority": 5})
    urgent = _setup(client, name="urgent", work_queue_name="urgent")
    worker = _worker(client)
    normal = [_run(client, deployment) for _ in range(3)]
    first_urgent = _run(client, urgent)

    client.post("/work_pools/etl/pause")
    assert _claim(client, worker)["flow_runs"] == []
    client.post("/work_pools/etl/resume")
    client.patch("/work_pools/etl", json={"concurrency_limit": 2})

    claimed = _claimed_ids(_claim(client, worker, limit=10))

    assert claimed == [first_urgent, normal[0]]
    client.patch("/work_pools/etl", json={"concurrency_limit": None})
    client.post("/work_pools/etl/queues/default/pause")
    assert _claim(client, worker)["flow_runs"] == []


def test_cancel_before_start_is_at_once_and_after_start_through_cancelling(
    client: TestClient,
) -> None:
    deployment = _setup(client)
    worker = _worker(client)
    waiting, running = _run(client, deployment), _run(client, deployment)
    client.post(f"/flow_runs/{waiting}/cancel")  # still queued
    token = _claim(client, worker)["flow_runs"][0]["claim_token"]
    client.post(f"/flow_runs/{running}/begin", json={"claim_token": token})

    cancelled = client.post(f"/flow_runs/{running}/cancel")
    answer = _claim(client, worker, limit=0, running=[running])
    exited = client.post(f"/flow_runs/{running}/exited", json={"exit_code": -9})
    again = client.post(f"/flow_runs/{running}/cancel")

    assert client.get(f"/flow_runs/{waiting}").json()["state_type"] == "CANCELLED"
    assert cancelled.json()["state_type"] == "CANCELLING"
    assert answer["cancelling"] == [running]
    assert exited.json()["state_type"] == "CANCELLED"
    assert again.status_code == 409
    assert "final state" in again.json()["message"]


def test_a_process_that_dies_crashes_the_run_or_retries_it(client: TestClient) -> None:
    deployment = _setup(client)
    worker = _worker(client)
    fragile, plain = _run(client, deployment), _run(client, deployment)
    tokens = {i["flow_run"]["id"]: i["claim_token"] for i in _claim(client, worker)["flow_runs"]}
    client.post(
        f"/flow_runs/{fragile}/begin",
        json={"claim_token": tokens[fragile], "retries": 1, "retry_delay_seconds": 0},
    )
    client.post(f"/flow_runs/{plain}/begin", json={"claim_token": tokens[plain]})

    retried = client.post(f"/flow_runs/{fragile}/exited", json={"exit_code": -9}).json()
    crashed = client.post(f"/flow_runs/{plain}/exited", json={"exit_code": 3}).json()

    assert (retried["state_type"], retried["state_name"]) == ("SCHEDULED", "AwaitingRetry")
    assert (crashed["state_type"], crashed["state_message"]) == (
        "CRASHED",
        "Its process exited with code 3 before the run finished.",
    )
    again = _claim(client, worker)["flow_runs"]
    assert [i["flow_run"]["id"] for i in again] == [fragile]
    begun = client.post(
        f"/flow_runs/{fragile}/begin", json={"claim_token": again[0]["claim_token"]}
    )
    assert begun.json()["run_count"] == 2


def test_serve_claims_its_deployments_runs_and_becomes_ready(client: TestClient) -> None:
    served = client.post("/deployments", json={"name": "served", "flow_name": "etl"}).json()
    assert served["status"] == "NOT_READY"
    runner = client.post("/workers/heartbeat", json={"name": "serve-1"}).json()["id"]
    run_id = _run(client, served)

    answer = client.post(
        "/deployments/get_scheduled_flow_runs",
        json={"worker_id": runner, "deployment_ids": [served["id"]]},
    ).json()

    assert _claimed_ids(answer) == [run_id]
    assert answer["flow_runs"][0]["entrypoint"] is None
    assert client.get(f"/deployments/{served['id']}").json()["status"] == "READY"


def test_claims_name_unknown_pools(client: TestClient) -> None:
    response = client.post(
        "/work_pools/nope/get_scheduled_flow_runs", json={"worker_id": str(uuid.uuid4())}
    )
    assert response.status_code == 404
    assert "headwater work-pool create nope" in response.json()["message"]


def test_a_finished_deployment_run_can_be_retried_under_its_id(client: TestClient) -> None:
    deployment = _setup(client)
    worker = _worker(client)
    run_id = _run(client, deployment)
    token = _claim(client, worker)["flow_runs"][0]["claim_token"]
    client.post(f"/flow_runs/{run_id}/begin", json={"claim_token": token})
    running = client.post(f"/flow_runs/{run_id}/retry")
    client.post(f"/flow_runs/{run_id}/exited", json={"exit_code": -9, "claim_token": token})

    retried = client.post(f"/flow_runs/{run_id}/retry")
    again = _claim(client, worker)["flow_runs"]
    begun = client.post(f"/flow_runs/{run_id}/begin", json={"claim_token": again[0]["claim_token"]})

    assert running.status_code == 409 and "only a Failed, Crashed" in running.json()["message"]
    assert retried.status_code == 200
    assert (retried.json()["state_type"], retried.json()["state_name"]) == (
        "SCHEDULED",
        "AwaitingRetry",
    )
    assert begun.json()["run_count"] == 2
    plain = client.post("/flow_runs", json={"flow_name": "adhoc"}).json()["id"]
    client.post(f"/flow_runs/{plain}/set_state", json={"type": "FAILED"})
    refused = client.post(f"/flow_runs/{plain}/retry")
    assert refused.status_code == 409 and "no deployment" in refused.json()["message"]
