"""Two API replicas on one database: shared data, and live updates across them (NOTIFY)."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from headwater.server.notifications import parse_payload, payloads

from .helpers import log_record, running_server
from .sse import EventReader, app_server
from .test_stream import move, new_run

#: Streams of the replica under test poll this rarely: what arrives sooner came by NOTIFY.
SLOW_POLL = 5.0


def test_a_run_written_through_one_replica_is_read_and_updated_through_the_other(
    database_url: str, tmp_path: Path
) -> None:
    with (
        running_server(tmp_path / "a", database_url, "--no-services") as (base_a, _),
        running_server(tmp_path / "b", database_url, "--no-services") as (base_b, _),
    ):
        a = httpx.Client(base_url=base_a, timeout=30)
        b = httpx.Client(base_url=base_b, timeout=30)

        created = a.post("/flow_runs", json={"flow_name": "shared"})
        assert created.status_code == 201
        run_id = created.json()["id"]
        assert b.get(f"/flow_runs/{run_id}").json()["state_type"] == "PENDING"

        assert b.post(f"/flow_runs/{run_id}/set_state", json={"type": "RUNNING"}).is_success
        assert a.get(f"/flow_runs/{run_id}").json()["state_type"] == "RUNNING"
        assert a.post(
            "/logs", json=[{"flow_run_id": run_id, "level": 20, "name": "x", "message": "m"}]
        ).is_success
        assert b.get("/logs", params={"flow_run_id": run_id}).json()["total"] == 1

        # Both replicas apply the same rules: a stale transition loses on either.
        assert a.post(f"/flow_runs/{run_id}/set_state", json={"type": "COMPLETED"}).is_success
        refused = b.post(f"/flow_runs/{run_id}/set_state", json={"type": "RUNNING"})
        assert refused.status_code == 409
        history = b.get(f"/flow_runs/{run_id}/states").json()
        assert [state["type"] for state in history] == ["PENDING", "RUNNING", "COMPLETED"]


def _postgresql(database_url_factory: Callable[[str], str]) -> str:
    return database_url_factory("postgresql")


def _notify_backends(database_url: str, server_pid: int) -> dict[str, int]:
    """The notifier connections of a server process: role ("listen", "send") -> backend pid."""
    prefix = f"headwater-notify-{server_pid}-"
    with psycopg.connect("postgresql://" + database_url.split("://", 1)[1]) as conn:
        rows = conn.execute(
            "SELECT application_name, pid FROM pg_stat_activity WHERE application_name LIKE %s",
            (prefix + "%",),
        ).fetchall()
    return {name.removeprefix(prefix): pid for name, pid in rows}


@pytest.mark.postgres
def test_a_stream_on_one_replica_hears_writes_through_the_other_within_a_second(
    database_url_factory: Callable[[str], str], tmp_path: Path
) -> None:
    url = _postgresql(database_url_factory)
    with (
        running_server(tmp_path / "a", url, "--no-services") as (base_a, _),
        app_server(tmp_path / "b", url, stream_poll_interval=SLOW_POLL) as (base_b, _),
    ):
        a = httpx.Client(base_url=base_a, timeout=30)
        run = new_run(a)
        delays = []
        with EventReader(base_b, flow_run_id=run["id"]) as reader:
            assert reader.next().data["type"] == "PENDING"
            for index in range(10):
                # Apart by more than the streams' least gap between two polls (50 ms),
                # so that the delay measured is the notification's.
                time.sleep(0.1)
                sent = time.monotonic()
                body = {"logs": [log_record(run["id"], f"line {index}", timestamp=time.time())]}
                assert a.post("/records", json=body).status_code == 200
                event = reader.next(timeout=10)
                assert event.data["message"] == f"line {index}"
                delays.append(event.received - sent)
            sent = time.monotonic()
            move(a, run, "COMPLETED")
            completed = reader.next(timeout=10)
            delays.append(completed.received - sent)
            assert (completed.event, completed.data["type"]) == ("flow_run.state", "COMPLETED")
            assert reader.next(timeout=10).event == "end"
    print(
        f"cross-replica delivery: median {statistics.median(delays) * 1000:.1f} ms, "
        f"max {max(delays) * 1000:.1f} ms over {len(delays)} writes"
    )
    assert max(delays) < 1.0, delays


@pytest.mark.postgres
def test_a_dropped_notification_connection_still_delivers_and_is_replaced(
    database_url_factory: Callable[[str], str], tmp_path: Path
) -> None:
    url = _postgresql(database_url_factory)
    options = {"stream_poll_interval": SLOW_POLL}
    with (
        app_server(tmp_path / "a", url, **options) as (base_a, _),
        app_server(tmp_path / "b", url, **options) as (base_b, process_b),
    ):
        a = httpx.Client(base_url=base_a, timeout=30)
        b = httpx.Client(base_url=base_b, timeout=30)
        run = new_run(a)
        with EventReader(base_b, flow_run_id=run["id"], kinds="logs") as reader:
            before = _notify_backends(url, process_b.pid)
            with psycopg.connect("postgresql://" + url.split("://", 1)[1]) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (before["listen"],))

            # Written through the other replica while B is deaf: B still sends it.
            a.post("/records", json={"logs": [log_record(run["id"], "while deaf")]})
            assert reader.next(timeout=SLOW_POLL + 5).data["message"] == "while deaf"

            deadline = time.monotonic() + 15
            while _notify_backends(url, process_b.pid).get("listen") in (None, before["listen"]):
                assert time.monotonic() < deadline, "the listener did not reconnect"
                time.sleep(0.1)
            sent = time.monotonic()
            a.post("/records", json={"logs": [log_record(run["id"], "heard again")]})
            event = reader.next(timeout=SLOW_POLL + 5)
            assert event.data["message"] == "heard again"
            assert event.received - sent < 1.0

        # B's sender, killed too, reconnects on its next NOTIFY: A's stream hears B's write.
        b.post("/logs", json=[{"flow_run_id": run["id"], "level": 20, "name": "x", "message": "1"}])
        # B publishes after answering, from its notifier's own connection: wait for it.
        deadline = time.monotonic() + 15
        while (sender := _notify_backends(url, process_b.pid).get("send")) is None:
            assert time.monotonic() < deadline, "B's notifier did not connect to send"
            time.sleep(0.05)
        with psycopg.connect("postgresql://" + url.split("://", 1)[1]) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (sender,))
        with EventReader(base_a, flow_run_id=run["id"], kinds="logs") as reader:
            assert [reader.next().data["message"] for _ in range(3)] == [
                "while deaf",
                "heard again",
                "1",
            ]
            time.sleep(0.2)
            sent = time.monotonic()
            b.post(
                "/logs", json=[{"flow_run_id": run["id"], "level": 20, "name": "x", "message": "2"}]
            )
            event = reader.next(timeout=10)
            assert event.data["message"] == "2"
    assert uuid.UUID(event.data["flow_run_id"]) == uuid.UUID(run["id"])


def test_notify_payloads_stay_under_the_postgresql_limit_and_read_back() -> None:
    ids = {uuid.uuid4().hex for _ in range(2000)}
    chunks = payloads(ids)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) < 8000 for chunk in chunks)
    read: set[str] = set()
    for chunk in chunks:
        parsed = parse_payload(chunk)
        assert parsed is not None
        read |= parsed
    assert read == ids
    assert parse_payload("*") is None  # "anything may have changed"
    assert parse_payload("not,ids") is None
