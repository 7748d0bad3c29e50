"""What `concurrency()` and `rate_limit()` share: the acquire request, waiting, leases.

Taking slots is one request (`POST /api/concurrency_limits/acquire`); when a
limit is full the server answers 423, and the caller waits and asks again
(`Attempts`: exponential backoff with jitter, or the server's hint when
slots decay). A lease is renewed by one daemon thread per process
(`LeaseKeeper`) until released; if the process dies, nobody renews it, it
expires, and the server frees its slots.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from headwater.exceptions import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    ConcurrencySlotsUnavailable,
    ObjectNotFound,
)

if TYPE_CHECKING:
    from headwater.client.api import ApiClient

logger = logging.getLogger("headwater.concurrency")

#: The first wait after a 423, and the longest, when only a release frees slots.
FIRST_DELAY = 0.05
MAX_DELAY = 1.0
#: A lease is renewed when this fraction of its duration has passed since the last
#: renewal, so two renewals can fail before it expires.
RENEW_FRACTION = 1 / 3
#: After a failed renewal, the next try comes this fraction of the duration later.
RETRY_FRACTION = 1 / 10

CONCURRENCY = "concurrency"
RATE_LIMIT = "rate_limit"

_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One acquisition: the body of `POST /concurrency_limits/acquire`, and how long to wait."""

    names: list[str]
    occupy: int
    mode: str
    lease_duration: float
    strict: bool
    holder: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "slots": self.occupy,
            "mode": self.mode,
            "lease_seconds": self.lease_duration,
            "holder": self.holder,
            "strict": self.strict,
        }


def make_request(
    names: str | Sequence[str],
    occupy: int,
    mode: str,
    lease_duration: float,
    strict: bool,
    holder: dict[str, Any] | None = None,
) -> Request | None:
    """The request for these arguments, checked; None when `names` is empty (nothing to do)."""
    listed = [names] if isinstance(names, str) else list(names)
    for name in listed:
        if not isinstance(name, str):
            raise TypeError(f"Concurrency limit names must be strings, got {name!r}.")
    if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
        raise ValueError(f"occupy must be a whole number of slots >= 1, got {occupy!r}.")
    if not lease_duration > 0 or math.isinf(lease_duration):
        raise ValueError(
            f"lease_duration must be a positive number of seconds, got {lease_duration!r}."
        )
    if not listed:
        return None
    return Request(
        names=list(dict.fromkeys(listed)),
        occupy=occupy,
        mode=mode,
        lease_duration=float(lease_duration),
        strict=strict,
        holder=holder if holder is not None else holder_info(),
    )


def holder_info() -> dict[str, Any]:
    """Who holds the slots, for `headwater concurrency-limit inspect`: process and run."""
    from headwater.context import flow_run_context, task_run_context

    holder: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    task_context = task_run_context.get()
    if task_context is not None:
        holder["task_run_id"] = task_context.task_run.hex_id
        holder["task_run_name"] = task_context.task_run.name
    flow_context = flow_run_context.get()
    if flow_context is not None:
        holder["flow_run_id"] = flow_context.flow_run.hex_id
    return holder


@dataclasses.dataclass(eq=False)
class Lease:
    """Slots held under a lease until `release`; `lost` if it expired meanwhile."""

    client: ApiClient
    id: str
    limits: list[str]
    duration: float
    lost: bool = False

    def release(self) -> None:
        """Stop renewing and give the slots back (a failure is logged: the lease expires)."""
        keeper().drop(self)
        try:
            self.client.request("DELETE", f"/concurrency_limits/leases/{self.id}")
        except Exception as exc:  # the slots come back when the lease expires
            logger.warning(
                "Could not release the slots of %s (lease %s): %s; they are freed when the "
                "lease expires, within %g s.",
                _limits_text(self.limits),
                self.id,
                exc,
                self.duration,
            )


def attempt(client: ApiClient, request: Request) -> Lease | None:
    """Ask for the slots once: the lease (None if nothing was limited).

    Raises:
        ConcurrencySlotsUnavailable: a limit is full; ask again later.
        ConcurrencySlotAcquisitionError: `strict` and a name is not a limit.
    """
    try:
        answer = client.request("POST", "/concurrency_limits/acquire", json=request.body())
    except ObjectNotFound as exc:
        raise ConcurrencySlotAcquisitionError(str(exc)) from None
    if answer["missing"]:
        warn_missing(answer["missing"], request.mode)
    if answer["lease_id"] is None:
        return None
    return Lease(client, answer["lease_id"], list(answer["limits"]), request.lease_duration)


def warn_missing(names: Sequence[str], mode: str) -> None:
    """Warn once per process about each name that is not a limit."""
    with _warned_lock:
        new = [name for name in names if name not in _warned]
        _warned.update(new)
    call = "rate_limit()" if mode == RATE_LIMIT else "concurrency()"
    for name in new:
        logger.warning(
            "Concurrency limit %r does not exist, so %s does not limit anything with it; "
            "create it with `headwater concurrency-limit create %s LIMIT` (strict=True makes "
            "this an error).",
            name,
            call,
            name,
        )


class Attempts:
    """When to ask again after a 423, and when to give up (timeout or max_retries)."""

    def __init__(
        self,
        timeout_seconds: float | None,
        max_retries: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.deadline = None if timeout_seconds is None else clock() + max(0.0, timeout_seconds)
        self.max_retries = max_retries
        self.retries = 0

    def delay(self, refused: ConcurrencySlotsUnavailable) -> float:
        """Seconds to wait before the next attempt.

        Raises:
            AcquireConcurrencySlotTimeoutError: `timeout_seconds` has passed.
            ConcurrencySlotAcquisitionError: `max_retries` attempts were refused.
        """
        reason = str(refused).removesuffix(".")
        if self.max_retries is not None and self.retries >= self.max_retries:
            raise ConcurrencySlotAcquisitionError(
                f"Gave up after {self.retries + 1} attempt(s) (max_retries={self.max_retries}): "
                f"{reason}."
            )
        if refused.retry_after is not None:  # slots decay: the server knows when
            delay = refused.retry_after * random.uniform(1.0, 1.1) + FIRST_DELAY / 5
        else:
            ceiling = min(MAX_DELAY, FIRST_DELAY * 2 ** min(self.retries, 16))
            delay = ceiling * random.uniform(0.5, 1.0)
        self.retries += 1
        if self.deadline is not None:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                raise AcquireConcurrencySlotTimeoutError(
                    f"Timed out after {self.timeout_seconds:g} s (timeout_seconds) waiting "
                    f"for slots: {reason}."
                )
            delay = min(delay, remaining)
        return delay


def _limits_text(limits: Sequence[str]) -> str:
    listed = ", ".join(repr(name) for name in limits)
    return f"concurrency limit{'s' if len(limits) != 1 else ''} {listed}"


class LeaseKeeper:
    """Renews every lease this process holds, from one daemon thread, until dropped."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        #: lease id -> (monotonic time of its next renewal, lease)
        self._due: dict[str, tuple[float, Lease]] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def hold(self, lease: Lease) -> None:
        with self._condition:
            if self._pid != os.getpid():  # a forked child renews none of its parent's leases
                self._due.clear()
                self._thread = None
                self._pid = os.getpid()
            self._due[lease.id] = (time.monotonic() + lease.duration * RENEW_FRACTION, lease)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="headwater-concurrency-leases", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def drop(self, lease: Lease) -> None:
        with self._condition:
            self._due.pop(lease.id, None)

    def holds(self, lease: Lease) -> bool:
        with self._condition:
            return lease.id in self._due

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    now = time.monotonic()
                    due = [lease for when, lease in self._due.values() if when <= now]
                    if due:
                        break
                    soonest = min((when for when, _ in self._due.values()), default=None)
                    self._condition.wait(None if soonest is None else soonest - now)
                for lease in due:  # until renewed, not due again
                    self._due[lease.id] = (now + lease.duration * RENEW_FRACTION, lease)
            for lease in due:
                self._renew(lease)

    def _renew(self, lease: Lease) -> None:
        try:
            lease.client.request(
                "POST",
                f"/concurrency_limits/leases/{lease.id}/renew",
                json={"lease_seconds": lease.duration},
            )
        except ObjectNotFound:
            with self._condition:
                if self._due.pop(lease.id, None) is None:
                    return  # released meanwhile
            lease.lost = True
            logger.warning(
                "The lease on the slots of %s expired before it was renewed, and the slots "
                "were freed: this holder now runs beyond the limit. Use a longer "
                "lease_duration if the process can stall for %g s.",
                _limits_text(lease.limits),
                lease.duration,
            )
        except Exception as exc:  # the server may be back for the next try
            with self._condition:
                if lease.id not in self._due:
                    return
                retry = time.monotonic() + max(0.1, lease.duration * RETRY_FRACTION)
                self._due[lease.id] = (retry, lease)
            logger.warning("Could not renew the lease on %s: %s", _limits_text(lease.limits), exc)


_keeper: LeaseKeeper | None = None
_keeper_lock = threading.Lock()


def keeper() -> LeaseKeeper:
    """The process's lease keeper, made on first use."""
    global _keeper
    with _keeper_lock:
        if _keeper is None:
            _keeper = LeaseKeeper()
        return _keeper
