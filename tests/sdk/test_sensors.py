"""`@sensor`: one check, edge triggering, serving forever (alone and through
`headwater.serve`), and failures that do not stop the loop. Events are read back from the
store (SQLite and PostgreSQL)."""

from __future__ import annotations

import _thread
import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import headwater
from headwater.client import api as client_api
from headwater.engine.recorder import close_recorder
from headwater.events import Event, Sensor, sensor
from headwater.exceptions import ConfigurationError
from headwater.store import tables

from .conftest import Store

#: The longest a test waits for an emitted event to be stored.
DEADLINE = 10.0


def _forget_clients() -> None:
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    _forget_clients()
    yield
    close_recorder()
    _forget_clients()


def stored(store: Store, name: str, *, at_least: int = 0) -> list[dict[str, Any]]:
    """The stored events named `name`, oldest first, once there are `at_least` of them."""
    query = (
        sa.select(tables.event)
        .where(tables.event.c.event == name)
        .order_by(tables.event.c.occurred, tables.event.c.id)
    )
    deadline = time.monotonic() + DEADLINE
    while True:
        rows = store._rows(query)
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def test_a_dict_is_emitted_as_the_payload_of_one_event(store: Store) -> None:
    @sensor(interval=30)
    def new_orders() -> dict[str, Any] | None:
        return {"count": 3, "ids": [1, 2, 3]}

    assert isinstance(new_orders, Sensor)
    event = new_orders()
    assert isinstance(event, Event)
    (row,) = stored(store, "sensor.new_orders.fired", at_least=1)
    assert row["id"] == event.id
    assert row["payload"] == {"count": 3, "ids": [1, 2, 3]}
    assert row["resource_id"] == "headwater.sensor.new_orders"
    assert row["resource"] == {
        "headwater.resource.id": "headwater.sensor.new_orders",
        "headwater.resource.name": "new_orders",
    }
    assert (new_orders.checks, new_orders.fired) == (1, 1)


def test_true_false_none_and_an_event(store: Store) -> None:
    answers: list[Any] = [None, False, True]

    @sensor(name="disk-full", event="ops.disk.full", resource={"host": "db-1"})
    def disk() -> Any:
        return answers.pop(0)

    assert disk.check() is None
    assert disk.check() is None
    fired = disk.check()
    assert fired is not None
    (row,) = stored(store, "ops.disk.full", at_least=1)
    assert row["payload"] == {}
    assert row["resource"] == {
        "headwater.resource.id": "headwater.sensor.disk-full",
        "headwater.resource.name": "disk-full",
        "host": "db-1",
    }
    assert disk.checks == 3 and disk.fired == 1

    own = Event(
        event="files.landed",
        resource={"headwater.resource.id": "s3.bucket.raw", "zone": "eu"},
        payload={"key": "2024/05/01.csv"},
    )

    @sensor
    def landed() -> Event:
        return own

    assert landed.interval == 30
    landed()
    (row,) = stored(store, "files.landed", at_least=1)
    assert (row["id"], row["resource_id"], row["payload"]) == (
        own.id,
        "s3.bucket.raw",
        {"key": "2024/05/01.csv"},
    )


def test_edge_emits_once_while_the_condition_holds(store: Store) -> None:
    present = [False, True, True, True, False, True]

    @sensor(interval=1, edge=True)
    def report_appears() -> dict[str, str] | None:
        return {"path": "/data/report.csv"} if present.pop(0) else None

    results = [report_appears() for _ in range(6)]
    assert [event is not None for event in results] == [False, True, False, False, False, True]
    assert len(stored(store, "sensor.report_appears.fired", at_least=2)) == 2


def test_serve_checks_at_once_then_every_interval_and_survives_errors(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[float] = []

    @sensor(interval=0.05, name="flaky")
    def flaky() -> dict[str, int]:
        calls.append(time.monotonic())
        if len(calls) in (2, 3):
            raise RuntimeError(f"database not reachable (call {len(calls)})")
        return {"call": len(calls)}

    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="headwater.sensors"):
        flaky.serve(checks=5)
    assert calls[0] - start < 0.05  # the first check is at once
    assert len(calls) == 5
    assert all(later - earlier >= 0.04 for earlier, later in itertools.pairwise(calls))
    assert (flaky.checks, flaky.fired, flaky.errors) == (5, 3, 2)
    assert "database not reachable (call 2)" in caplog.text

    fired = stored(store, "sensor.flaky.fired", at_least=3)
    assert [row["payload"] for row in fired] == [{"call": 1}, {"call": 4}, {"call": 5}]
    # One failure event per streak of failures, with the error.
    (failed,) = stored(store, "headwater.sensor.failed", at_least=1)
    assert failed["resource_id"] == "headwater.sensor.flaky"
    assert failed["payload"] == {"error": "RuntimeError: database not reachable (call 2)"}


def test_serve_stops_when_asked(store: Store) -> None:
    @sensor(interval=0.01)
    def quiet() -> None:
        return None

    stop = threading.Event()
    thread = threading.Thread(target=quiet.serve, kwargs={"stop": stop})
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while quiet.checks < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
    assert quiet.checks >= 3


def test_async_sensor(store: Store) -> None:
    @sensor(interval=0.01)
    async def queue_backlog() -> dict[str, int]:
        await asyncio.sleep(0)
        return {"backlog": 7}

    assert queue_backlog() is not None
    assert asyncio.run(queue_backlog.acheck()) is not None
    rows = stored(store, "sensor.queue_backlog.fired", at_least=2)
    assert [row["payload"] for row in rows] == [{"backlog": 7}] * 2

    async def inside_a_loop() -> None:
        with pytest.raises(RuntimeError, match=r"await queue_backlog.acheck\(\)"):
            queue_backlog.check()

    asyncio.run(inside_a_loop())


def test_headwater_serve_runs_sensors_until_ctrl_c(store: Store) -> None:
    checks: list[float] = []

    @sensor(interval=0.05, name="rows-waiting")
    def rows_waiting() -> dict[str, int]:
        checks.append(time.monotonic())
        if len(checks) == 3:
            _thread.interrupt_main()  # Ctrl-C
        return {"rows": len(checks)}

    headwater.serve(rows_waiting, print_starting_message=False)
    stopped_at = len(checks)
    assert stopped_at >= 3
    time.sleep(0.2)
    assert len(checks) == stopped_at  # serving stopped the sensor's thread
    rows = stored(store, "sensor.rows-waiting.fired", at_least=stopped_at)
    assert [row["payload"]["rows"] for row in rows] == list(range(1, stopped_at + 1))


def test_bad_sensors_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="interval=30"):
        sensor(interval=0)(lambda: None)
    with pytest.raises(ConfigurationError, match="at least one deployment"):
        headwater.serve()

    @sensor(interval=1)
    def confused() -> Any:
        return ["a"]

    with pytest.raises(TypeError, match=r"Sensor 'confused' returned list; return None/False"):
        confused()


def test_each_event_has_a_new_id(store: Store) -> None:
    @sensor(interval=1)
    def always() -> bool:
        return True

    first, second = always(), always()
    assert first is not None and second is not None
    assert isinstance(first.id, uuid.UUID) and first.id != second.id
    assert len(stored(store, "sensor.always.fired", at_least=2)) == 2


@headwater.flow
def tidy() -> None:
    """A flow for the deployment served beside a sensor."""


def test_headwater_serve_runs_sensors_beside_deployments(store: Store) -> None:
    checks: list[float] = []

    @sensor(interval=0.05, name="beside")
    def beside() -> bool:
        checks.append(time.monotonic())
        if len(checks) == 3:
            _thread.interrupt_main()  # Ctrl-C
        return True

    headwater.serve(tidy.to_deployment("hourly"), beside, print_starting_message=False)
    stopped_at = len(checks)
    time.sleep(0.2)
    assert len(checks) == stopped_at >= 3
    assert len(stored(store, "sensor.beside.fired", at_least=stopped_at)) == stopped_at
    deployment = client_api.get_client().request("GET", "/deployments/name/tidy/hourly")
    assert deployment["paused"] is True  # serving stopped: paused as without sensors
