"""Concurrency and rate limits for async code (`async with concurrency(...)`).

The same as `headwater.concurrency.sync`, without blocking the event loop:
requests run in a worker thread and waits are `asyncio.sleep`.

Example:
    >>> from headwater.concurrency.asyncio import concurrency, rate_limit
    >>> async with concurrency("database", occupy=1):
    ...     await load_rows()
    >>> await rate_limit("github-api")
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence

from headwater.concurrency import _leases
from headwater.exceptions import ConcurrencySlotsUnavailable

__all__ = ["concurrency", "rate_limit"]


@contextlib.asynccontextmanager
async def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
) -> AsyncIterator[None]:
    """Hold `occupy` slots of each named limit while the block runs (see `sync.concurrency`).

    Raises:
        AcquireConcurrencySlotTimeoutError: `timeout_seconds` passed (a TimeoutError).
        ConcurrencySlotAcquisitionError: `max_retries` ran out, or `strict` and a
            limit does not exist.
        InvalidRequest: `occupy` is more than a limit's total slots.

    Example:
        >>> async with concurrency("database", occupy=2, timeout_seconds=30):
        ...     await copy_table()
    """
    request = _leases.make_request(names, occupy, _leases.CONCURRENCY, lease_duration, strict)
    lease = None if request is None else await _acquire(request, timeout_seconds, max_retries)
    try:
        yield
    finally:
        if lease is not None:
            await asyncio.to_thread(lease.release)


async def rate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait for and take `occupy` slots of each named limit, for good (see `sync.rate_limit`).

    Example:
        >>> for url in urls:
        ...     await rate_limit("github-api")
        ...     await fetch(url)
    """
    request = _leases.make_request(names, occupy, _leases.RATE_LIMIT, 300, strict)
    if request is not None:
        await _acquire(request, timeout_seconds, None)


async def _acquire(
    request: _leases.Request, timeout_seconds: float | None, max_retries: int | None
) -> _leases.Lease | None:
    from headwater.client.api import get_client

    client = await asyncio.to_thread(get_client)  # the embedded API starts up on first use
    attempts = _leases.Attempts(timeout_seconds, max_retries)
    while True:
        pending = asyncio.ensure_future(asyncio.to_thread(_leases.attempt, client, request))
        try:
            lease = await asyncio.shield(pending)
        except ConcurrencySlotsUnavailable as refused:
            await asyncio.sleep(attempts.delay(refused))
            continue
        except asyncio.CancelledError:
            # The request goes on in its thread: give back whatever it takes.
            pending.add_done_callback(_release_when_granted)
            raise
        if lease is not None:
            _leases.keeper().hold(lease)
        return lease


def _release_when_granted(done: asyncio.Future[_leases.Lease | None]) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    lease = done.result()
    if lease is not None:
        threading.Thread(target=lease.release, daemon=True).start()
