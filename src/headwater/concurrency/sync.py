"""Concurrency and rate limits for synchronous code (`with concurrency(...)`).

Example:
    >>> from headwater.concurrency.sync import concurrency, rate_limit
    >>> with concurrency("database", occupy=1, timeout_seconds=60):
    ...     load_rows()
    >>> rate_limit("github-api")  # returns once a slot is free
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

from headwater.concurrency import _leases
from headwater.exceptions import ConcurrencySlotsUnavailable

__all__ = ["concurrency", "rate_limit"]


@contextlib.contextmanager
def concurrency(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
) -> Iterator[None]:
    """Hold `occupy` slots of each named limit for the duration of the block.

    Waits until every limit has the slots free, then takes them all at once
    (never some of them). While the block runs, a background thread renews the
    slots' lease every `lease_duration / 3` seconds; at the end they are
    released. If the process dies, the lease expires after `lease_duration`
    seconds and the server frees the slots.

    Args:
        names: a limit's name, or several.
        occupy: slots to take of each limit.
        timeout_seconds: give up after this long (None: wait as long as it takes).
        max_retries: give up after this many refused attempts (None: no limit).
        lease_duration: seconds the slots stay taken if this process stops renewing.
        strict: raise if a name is not a limit (else it is ignored, with a warning).

    Raises:
        AcquireConcurrencySlotTimeoutError: `timeout_seconds` passed (a TimeoutError).
        ConcurrencySlotAcquisitionError: `max_retries` ran out, or `strict` and a
            limit does not exist.
        InvalidRequest: `occupy` is more than a limit's total slots.

    Example:
        >>> with concurrency(["database", "disk"], occupy=2):
        ...     copy_table()
    """
    request = _leases.make_request(names, occupy, _leases.CONCURRENCY, lease_duration, strict)
    lease = None if request is None else _acquire(request, timeout_seconds, max_retries)
    try:
        yield
    finally:
        if lease is not None:
            lease.release()


def rate_limit(
    names: str | Sequence[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait for and take `occupy` slots of each named limit, for good.

    The limits must have slot decay (`--slot-decay-per-second`): their slots
    free up at that rate, which makes them rates (e.g. limit 10 with decay 1/s
    allows bursts of 10 and 1 call per second on average).

    Raises:
        AcquireConcurrencySlotTimeoutError: `timeout_seconds` passed (a TimeoutError).
        ConcurrencySlotAcquisitionError: `strict` and a limit does not exist.
        InvalidRequest: a limit has no slot decay, or fewer slots than `occupy`.

    Example:
        >>> for url in urls:
        ...     rate_limit("github-api")
        ...     fetch(url)
    """
    request = _leases.make_request(names, occupy, _leases.RATE_LIMIT, 300, strict)
    if request is not None:
        _acquire(request, timeout_seconds, None)


def _acquire(
    request: _leases.Request, timeout_seconds: float | None, max_retries: int | None
) -> _leases.Lease | None:
    from headwater.client.api import get_client

    client = get_client()
    attempts = _leases.Attempts(timeout_seconds, max_retries)
    while True:
        try:
            lease = _leases.attempt(client, request)
        except ConcurrencySlotsUnavailable as refused:
            time.sleep(attempts.delay(refused))
            continue
        if lease is not None:
            _leases.keeper().hold(lease)
        return lease
