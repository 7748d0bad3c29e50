"""`concurrency()` and `rate_limit()`, sync and async, embedded and against a server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from headwater.client.api import InvalidRequest, get_client
from headwater.concurrency import _leases
from headwater.concurrency import asyncio as concurrency_async
from headwater.concurrency.sync import concurrency, rate_limit
from headwater.exceptions import AcquireConcurrencySlotTimeoutError, ConcurrencySlotAcquisitionError
from headwater.server.services import run_once


def create(name: str, limit: int, **values: object) -> None:
    get_client().request(
        "POST", "/concurrency_limits", json={"name": name, "limit": limit, **values}
    )


def taken(name: str) -> float:
    value: float = get_client().request("GET", f"/concurrency_limits/{name}")["active_slots"]
    return value


def peak_of_threads(threads: int) -> int:
    """`threads` threads each hold a slot of "db" a moment; the most that held one at once."""
    inside = [0]
    peak = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with concurrency("db", lease_duration=30):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.05)
                with lock:
                    inside[0] -= 1
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    return peak[0]


def test_concurrency_limits_threads_embedded(embedded: str) -> None:
    create("db", 2)
    assert peak_of_threads(6) == 2
    assert taken("db") == 0


def test_sync_and_async_against_a_server(remote: str) -> None:
    create("db", 2)
    assert peak_of_threads(6) == 2
    assert taken("db") == 0

    async def main() -> list[str]:
        order: list[str] = []

        async def work(name: str) -> None:
            async with concurrency_async.concurrency("db", occupy=2, timeout_seconds=10):
                order.append(f"{name} in")
                await asyncio.sleep(0.05)
                order.append(f"{name} out")

        await asyncio.gather(work("a"), work("b"))
        return order

    order = asyncio.run(main())
    assert order[0][0] == order[1][0]  # one holder at a time: in, out, in, out
    assert taken("db") == 0


def test_slots_are_held_inside_the_block_and_released_on_error(embedded: str) -> None:
    create("db", 3)
    create("disk", 2)
    with pytest.raises(RuntimeError, match="boom"), concurrency(["db", "disk"], occupy=2):
        assert (taken("db"), taken("disk")) == (2, 2)
        raise RuntimeError("boom")
    assert (taken("db"), taken("disk")) == (0, 0)


def test_timeout_names_the_limit(embedded: str) -> None:
    create("db", 1)
    with concurrency("db"):
        started = time.monotonic()
        with (
            pytest.raises(AcquireConcurrencySlotTimeoutError, match="'db'") as raised,
            concurrency("db", timeout_seconds=0.3),
        ):
            pass
        assert 0.3 <= time.monotonic() - started < 2
        assert isinstance(raised.value, TimeoutError)
        with (
            pytest.raises(ConcurrencySlotAcquisitionError, match="max_retries=2"),
            concurrency("db", max_retries=2),
        ):
            pass
    with concurrency("db", timeout_seconds=0):  # free again: no waiting needed
        assert taken("db") == 1


def test_waiting_holder_gets_the_slot_when_it_is_released(embedded: str) -> None:
    create("db", 1)
    order: list[str] = []

    def second() -> None:
        with concurrency("db", timeout_seconds=10):
            order.append("second")

    with concurrency("db"):
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.2)
        order.append("first done")
    waiter.join()
    assert order == ["first done", "second"]


def test_missing_limit_warns_once_unless_strict(
    embedded: str, caplog: pytest.LogCaptureFixture
) -> None:
    _leases._warned.discard("nowhere")
    with caplog.at_level(logging.WARNING, logger="headwater.concurrency"):
        with concurrency("nowhere"):
            pass
        with concurrency("nowhere"):
            pass
        rate_limit("nowhere")
    warnings = [r.getMessage() for r in caplog.records if "'nowhere'" in r.getMessage()]
    assert len(warnings) == 1
    assert "headwater concurrency-limit create nowhere LIMIT" in warnings[0]

    with (
        pytest.raises(ConcurrencySlotAcquisitionError) as raised,
        concurrency("nowhere", strict=True),
    ):
        pass
    assert "'nowhere'" in str(raised.value)
    assert "`headwater concurrency-limit create nowhere LIMIT`" in str(raised.value)


def test_occupy_beyond_the_limit_is_an_error(embedded: str) -> None:
    create("db", 2)
    with (
        pytest.raises(InvalidRequest, match="concurrency limit 'db' has only 2"),
        concurrency("db", occupy=3),
    ):
        pass
    with pytest.raises(ValueError, match="occupy"), concurrency("db", occupy=0):
        pass


def test_rate_limit_paces_calls(embedded: str) -> None:
    create("api", 1, slot_decay_per_second=20)
    started = time.monotonic()
    for _ in range(5):
        rate_limit("api")
    # A burst of 1, then one call every 1/20 s.
    assert time.monotonic() - started >= 0.18
    create("slow", 1, slot_decay_per_second=0.01)
    rate_limit("slow")
    with pytest.raises(AcquireConcurrencySlotTimeoutError, match="'slow'"):
        rate_limit("slow", timeout_seconds=0.1)


def test_rate_limit_needs_slot_decay(embedded: str) -> None:
    create("db", 2)
    with pytest.raises(InvalidRequest, match="--slot-decay-per-second"):
        rate_limit("db")


def test_lease_is_renewed_while_held(embedded: str) -> None:
    create("db", 1)
    with concurrency("db", lease_duration=1):
        time.sleep(1.6)  # well past the first lease's expiry
        run_once(embedded)  # a services round expires what was not renewed
        assert taken("db") == 1
        (lease,) = get_client().request("GET", "/concurrency_limits/db/leases")
        assert lease["holder"]["pid"] == os.getpid()
    assert taken("db") == 0


def test_async_concurrency(embedded: str) -> None:
    create("db", 2)
    create("api", 1, slot_decay_per_second=50)

    async def main() -> int:
        inside = 0
        peak = 0

        async def work() -> None:
            nonlocal inside, peak
            async with concurrency_async.concurrency("db"):
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.05)
                inside -= 1

        ticks = 0

        async def ticker() -> None:  # the loop keeps running while others wait
            nonlocal ticks
            for _ in range(10):
                await asyncio.sleep(0.01)
                ticks += 1

        await asyncio.gather(ticker(), *(work() for _ in range(5)))
        assert ticks == 10
        for _ in range(3):
            await concurrency_async.rate_limit("api")
        async with concurrency_async.concurrency("db", occupy=2):
            with pytest.raises(AcquireConcurrencySlotTimeoutError, match="'db'"):
                async with concurrency_async.concurrency("db", timeout_seconds=0.1):
                    pass
        return peak

    assert asyncio.run(main()) == 2
    assert taken("db") == 0


HOLDER = textwrap.dedent(
    """
    import time
    from headwater.concurrency.sync import concurrency

    with concurrency("db", occupy=2, lease_duration=2):
        print("holding", flush=True)
        time.sleep(60)
    """
)


def test_slots_of_a_killed_holder_come_back_after_expiry(embedded: str, tmp_path: Path) -> None:
    create("db", 2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        assert taken("db") == 2
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.time()
        run_once(embedded, now=killed)
        assert taken("db") == 2  # the lease has not expired yet
        report = run_once(embedded, now=killed + 2.5)  # a services round after its expiry
        assert report is not None and report["leases"] == 1
        assert taken("db") == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
