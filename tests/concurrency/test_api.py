"""The concurrency-limit API: managing limits, taking and giving back slots, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from headwater.server.database import Database
from headwater.server.repositories import concurrency
from headwater.server.services import run_once

from .conftest import TestClient


def create(api: TestClient, name: str = "db", limit: int = 2, **values: Any) -> dict[str, Any]:
    response = api.post("/concurrency_limits", json={"name": name, "limit": limit, **values})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def acquire(api: TestClient, *names: str, **values: Any) -> Any:
    return api.post("/concurrency_limits/acquire", json={"names": list(names), **values})


def taken(api: TestClient, name: str = "db") -> float:
    value: float = api.get(f"/concurrency_limits/{name}").json()["active_slots"]
    return value


def test_create_read_list_update_delete(api: TestClient) -> None:
    created = create(api, "db", 3)
    assert created["name"] == "db"
    assert (created["limit"], created["active"], created["active_slots"]) == (3, True, 0.0)
    create(api, "tag:etl", 1)
    create(api, "api", 10, slot_decay_per_second=2, active=False)

    assert api.get("/concurrency_limits/db").json() == created
    page = api.get("/concurrency_limits").json()
    assert [item["name"] for item in page["items"]] == ["api", "db", "tag:etl"]
    assert page["total"] == 3
    tag_limits = api.get("/concurrency_limits", params={"name_prefix": "tag:"}).json()
    assert [item["name"] for item in tag_limits["items"]] == ["tag:etl"]
    active = api.get("/concurrency_limits", params={"active": True}).json()
    assert [item["name"] for item in active["items"]] == ["db", "tag:etl"]

    updated = api.patch("/concurrency_limits/db", json={"limit": 5, "active": False}).json()
    assert (updated["limit"], updated["active"]) == (5, False)
    assert api.delete("/concurrency_limits/db").status_code == 204
    assert api.get("/concurrency_limits/db").status_code == 404


def test_errors_name_the_limit_and_the_fix(api: TestClient) -> None:
    create(api, "db", 2)
    duplicate = api.post("/concurrency_limits", json={"name": "db", "limit": 1})
    assert duplicate.status_code == 409
    assert "'db' already exists" in duplicate.json()["message"]

    missing = api.get("/concurrency_limits/nope")
    assert missing.status_code == 404
    assert "`headwater concurrency-limit create nope LIMIT`" in missing.json()["message"]
    assert api.patch("/concurrency_limits/nope", json={"limit": 1}).status_code == 404
    assert api.delete("/concurrency_limits/nope").status_code == 404
    assert api.post("/concurrency_limits/nope/reset").status_code == 404

    too_many = acquire(api, "db", slots=3)
    assert too_many.status_code == 422
    assert "concurrency limit 'db' has only 2" in too_many.json()["message"]
    assert too_many.json()["detail"][0]["loc"] == ["body", "slots"]

    no_decay = acquire(api, "db", mode="rate_limit")
    assert no_decay.status_code == 422
    assert "'db'" in no_decay.json()["message"]
    assert "--slot-decay-per-second" in no_decay.json()["message"]

    strict = acquire(api, "db", "nope", strict=True)
    assert strict.status_code == 404
    assert "'nope'" in strict.json()["message"]
    assert taken(api) == 0  # nothing taken from 'db' either

    slash = api.post("/concurrency_limits", json={"name": "a/b", "limit": 1})
    assert slash.status_code == 422
    assert "contains '/'" in slash.json()["message"]
    for bad in ({"name": "x", "limit": -1}, {"name": "", "limit": 1}, {"name": "x"}):
        assert api.post("/concurrency_limits", json=bad).status_code == 422
    assert acquire(api, "db", slots=0).status_code == 422
    assert acquire(api, "db", lease_seconds=0).status_code == 422
    assert api.post("/concurrency_limits/acquire", json={"names": []}).status_code == 422


def test_acquire_release_and_locked(api: TestClient) -> None:
    create(api, "db", 2)
    first = acquire(api, "db", slots=2, holder={"pid": 42, "host": "worker-1"})
    assert first.status_code == 200
    lease_id = first.json()["lease_id"]
    assert first.json()["limits"] == ["db"]
    assert taken(api) == 2

    refused = acquire(api, "db")
    assert refused.status_code == 423
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["limit"] == "db"
    assert "0 of 2 slot(s) free" in refused.json()["message"]

    (lease,) = api.get("/concurrency_limits/db/leases").json()
    assert (lease["id"], lease["slots"], lease["limits"]) == (lease_id, 2, ["db"])
    assert lease["holder"] == {"pid": 42, "host": "worker-1"}

    renewed = api.post(f"/concurrency_limits/leases/{lease_id}/renew", json={"lease_seconds": 60})
    assert renewed.status_code == 200
    assert api.delete(f"/concurrency_limits/leases/{lease_id}").status_code == 204
    assert api.delete(f"/concurrency_limits/leases/{lease_id}").status_code == 204  # idempotent
    assert taken(api) == 0
    assert api.get("/concurrency_limits/db/leases").json() == []
    gone = api.post(f"/concurrency_limits/leases/{lease_id}/renew", json={})
    assert gone.status_code == 404
    assert "acquire the slots again" in gone.json()["message"]
    assert acquire(api, "db", slots=2).status_code == 200


def test_acquisition_is_all_or_nothing_across_limits(api: TestClient) -> None:
    create(api, "a", 2)
    create(api, "b", 1)
    holding_b = acquire(api, "b").json()
    refused = acquire(api, "a", "b")
    assert refused.status_code == 423
    assert refused.json()["limit"] == "b"
    assert taken(api, "a") == 0  # not half acquired

    api.delete(f"/concurrency_limits/leases/{holding_b['lease_id']}")
    both = acquire(api, "a", "b").json()
    assert both["limits"] == ["a", "b"]
    assert (taken(api, "a"), taken(api, "b")) == (1, 1)
    api.delete(f"/concurrency_limits/leases/{both['lease_id']}")
    assert (taken(api, "a"), taken(api, "b")) == (0, 0)


def test_missing_and_inactive_limits_do_not_block(api: TestClient) -> None:
    create(api, "off", 1, active=False)
    create(api, "on", 1)
    answer = acquire(api, "off", "on", "nope").json()
    assert answer["limits"] == ["on"]
    assert answer["missing"] == ["nope"]
    assert acquire(api, "off", "nope").json() == {
        "lease_id": None,
        "expires": None,
        "limits": [],
        "missing": ["nope"],
    }
    assert taken(api, "off") == 0


def test_reset_frees_every_slot(api: TestClient) -> None:
    create(api, "a", 1)
    create(api, "b", 1)
    lease = acquire(api, "a", "b").json()["lease_id"]
    reset = api.post("/concurrency_limits/a/reset")
    assert reset.status_code == 200
    assert reset.json()["active_slots"] == 0
    assert api.get("/concurrency_limits/a/leases").json() == []
    # The lease still holds 'b'; releasing it does not free 'a' a second time.
    assert acquire(api, "a").status_code == 200
    api.delete(f"/concurrency_limits/leases/{lease}")
    assert (taken(api, "a"), taken(api, "b")) == (1, 0)


def test_updating_the_limit_keeps_held_slots(api: TestClient) -> None:
    create(api, "db", 3)
    acquire(api, "db", slots=3)
    api.patch("/concurrency_limits/db", json={"limit": 1})
    assert taken(api) == 3
    assert acquire(api, "db").status_code == 423
    api.patch("/concurrency_limits/db", json={"active": False})
    assert acquire(api, "db").json()["limits"] == []  # inactive: passes, takes nothing


def test_concurrent_requests_never_exceed_the_limit(api: TestClient) -> None:
    create(api, "db", 3)
    held = [0]  # slots granted and not yet given back, as the holders count them
    peak = [0]
    granted = [0]
    lock = threading.Lock()

    def worker(slots: int) -> None:
        for _ in range(8):
            response = acquire(api, "db", slots=slots)
            if response.status_code == 423:
                continue
            assert response.status_code == 200, response.text
            with lock:
                granted[0] += 1
                held[0] += slots
                peak[0] = max(peak[0], held[0])
            time.sleep(0.002)
            with lock:
                held[0] -= slots
            api.delete(f"/concurrency_limits/leases/{response.json()['lease_id']}")

    threads = [threading.Thread(target=worker, args=(1 + i % 2,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted[0] > 3
    assert peak[0] <= 3
    assert taken(api) == 0


def test_rate_limit_slots_decay(api: TestClient) -> None:
    create(api, "api", 2, slot_decay_per_second=4)
    assert acquire(api, "api", mode="rate_limit").json()["lease_id"] is None
    assert acquire(api, "api", mode="rate_limit").status_code == 200
    refused = acquire(api, "api", mode="rate_limit")
    assert refused.status_code == 423
    assert 0 < refused.json()["retry_after"] <= 0.25
    time.sleep(refused.json()["retry_after"] + 0.01)
    assert acquire(api, "api", mode="rate_limit").status_code == 200


def test_expired_leases_free_their_slots_in_a_services_round(api: TestClient) -> None:
    create(api, "db", 1)
    acquire(api, "db", lease_seconds=10)
    url = api.app.state.database.url  # type: ignore[attr-defined]
    assert run_once(url) is not None
    assert taken(api) == 1  # not expired yet
    report = run_once(url, now=time.time() + 11)
    assert report is not None and report["leases"] == 1
    assert taken(api) == 0


def test_a_refused_request_frees_expired_leases_itself(api: TestClient) -> None:
    # Embedded mode has no services round: slots of a dead holder still come back.
    create(api, "db", 1)
    acquire(api, "db", lease_seconds=0.1)
    time.sleep(0.15)
    assert acquire(api, "db").status_code == 200


# -- the repository, on a clock of the test's choosing ------------------------------

T0 = 1_700_000_000.0


def test_decay_follows_the_clock(database_url: str) -> None:
    from headwater.schemas.concurrency import AcquireRequest, ConcurrencyLimitCreate

    db = Database(database_url)
    db.ensure_schema()
    try:
        rate = AcquireRequest(names=["api"], slots=1, mode="rate_limit")
        with db.write() as conn:
            body = ConcurrencyLimitCreate(name="api", limit=2, slot_decay_per_second=0.5)
            concurrency.create(conn, body=body, now=T0)
        for _ in range(2):
            with db.write() as conn:
                concurrency.acquire(conn, request=rate, now=T0)
        with db.write() as conn, pytest.raises(Exception) as refused:
            concurrency.acquire(conn, request=rate, now=T0 + 1)  # 0.5 slot freed: not enough
        assert refused.value.retry_after == pytest.approx(1.0)  # type: ignore[attr-defined]
        with db.read() as conn:
            assert concurrency.read(conn, name="api", now=T0 + 3).active_slots == 0.5
        with db.write() as conn:
            concurrency.acquire(conn, request=rate, now=T0 + 2)
        with db.read() as conn:
            assert concurrency.read(conn, name="api", now=T0 + 2).active_slots == 2
    finally:
        db.dispose()


def test_separate_connections_never_exceed_the_limit(database_url: str) -> None:
    """Acquisitions from several engines (as several server replicas) stay atomic."""
    from headwater.schemas.concurrency import AcquireRequest, ConcurrencyLimitCreate

    setup = Database(database_url)
    setup.ensure_schema()
    with setup.write() as conn:
        concurrency.create(conn, body=ConcurrencyLimitCreate(name="db", limit=2), now=T0)
        concurrency.create(conn, body=ConcurrencyLimitCreate(name="disk", limit=3), now=T0)
    replicas = [Database(database_url, pool_size=2) for _ in range(4)]
    errors: list[BaseException] = []

    def take(db: Database, rounds: int, check: Callable[[], None]) -> None:
        request = AcquireRequest(names=["disk", "db"], slots=1)
        try:
            for _ in range(rounds):
                try:
                    with db.write() as conn:
                        lease = concurrency.acquire(conn, request=request, now=time.time())
                except concurrency.ConcurrencySlotsUnavailable:
                    continue
                check()
                with db.write() as conn:
                    assert lease.lease_id is not None
                    concurrency.release(conn, lease_id=lease.lease_id, now=time.time())
        except BaseException as exc:
            errors.append(exc)

    def check() -> None:
        with setup.read() as conn:
            db_slots = concurrency.read(conn, name="db", now=time.time()).active_slots
            disk_slots = concurrency.read(conn, name="disk", now=time.time()).active_slots
        assert db_slots <= 2 and disk_slots <= 2  # 'disk' moves only with 'db'

    threads = [threading.Thread(target=take, args=(replicas[i % 4], 15, check)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        with setup.read() as conn:
            assert concurrency.read(conn, name="db", now=time.time()).active_slots == 0
            assert concurrency.read(conn, name="disk", now=time.time()).active_slots == 0
    finally:
        for db in [setup, *replicas]:
            db.dispose()
