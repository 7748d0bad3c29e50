"""Wake-ups when runs change: in process, and across replicas through PostgreSQL.

A notification only says "flow runs X, Y changed"; what changed is read from
the database by whoever wakes up. So a lost notification costs latency, never
data: subscribers also poll on a timer (see `server/streams.py`).

- `LocalNotifier` wakes the subscribers of this process. It serves SQLite,
  where one process serves the store (each `--workers` process on its own,
  the others catch up by polling).
- `PostgresNotifier` also sends `NOTIFY headwater_runs, '<ids>'` after each
  write and `LISTEN`s on that channel, so every replica on the database wakes
  its subscribers within a few milliseconds. Its connections reconnect with
  backoff; meanwhile subscribers live on their polling.

Routes publish after their transaction committed, from any thread:

    with db.write() as conn:
        write_batch(conn, batch)
    notifier.publish(flow_run_ids_of(batch))
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import threading
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from headwater.core.records import Batch
from headwater.store.schema import display_url

logger = logging.getLogger(__name__)

#: The PostgreSQL channel of run changes; payloads are comma-separated hex ids.
CHANNEL = "headwater_runs"
#: A payload that means "anything may have changed" (e.g. too many ids to list).
EVERYTHING = "*"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
PAYLOAD_MAX_BYTES = 7900
#: Ids a subscriber collects between two reads before it just hears "everything".
_MAX_PENDING_IDS = 10_000
#: Ids the sender may hold while its connection is down (then it sends "everything").
_MAX_OUTBOX_IDS = 100_000
#: Seconds between liveness checks of an idle LISTEN connection.
_LISTEN_CHECK_INTERVAL = 30.0
#: libpq options: notice a silently dead connection within about half a minute.
_CONNECT_OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Wakeup:
    """What a subscriber was woken for: these flow runs, or possibly any (`everything`).

    Ids are 32 lowercase hex digits, as the store writes them.
    """

    flow_run_ids: frozenset[str] = frozenset()
    everything: bool = False


class Subscription:
    """Wake-ups for one subscriber: for one flow run, or for all of them (`flow_run_id=None`).

    Example:
        >>> async with notifier.subscribe(run_id) as subscription:
        ...     wakeup = await subscription.wait(timeout=1.0)  # None: timed out
    """

    def __init__(self, flow_run_id: uuid.UUID | None) -> None:
        self.flow_run_id = flow_run_id
        self._key = None if flow_run_id is None else flow_run_id.hex
        self._event = asyncio.Event()
        self._ids: set[str] = set()
        self._everything = False

    def _notify(self, ids: frozenset[str] | None) -> None:
        """Called in the event loop; `ids=None` means anything may have changed."""
        if ids is None:
            self._everything = True
        elif self._key is not None:
            if self._key not in ids:
                return
            self._ids.add(self._key)
        elif len(self._ids) + len(ids) > _MAX_PENDING_IDS:
            self._everything = True
            self._ids.clear()
        elif not self._everything:
            self._ids.update(ids)
        self._event.set()

    async def wait(self, timeout: float | None = None) -> Wakeup | None:
        """The next wake-up (all those since the last one, merged); None after `timeout`."""
        if not self._event.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._event.wait()
            except TimeoutError:
                return None
        self._event.clear()
        wakeup = Wakeup(frozenset(self._ids), self._everything)
        self._ids, self._everything = set(), False
        return wakeup

    def __aiter__(self) -> AsyncIterator[Wakeup]:
        return self

    async def __anext__(self) -> Wakeup:
        wakeup = await self.wait()
        assert wakeup is not None
        return wakeup


class Notifier(Protocol):
    """Publishes that flow runs changed; subscribers of every replica wake up."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def publish(self, flow_run_ids: Iterable[uuid.UUID | str | None]) -> None: ...
    def subscribe(
        self, flow_run_id: uuid.UUID | None = None
    ) -> contextlib.AbstractAsyncContextManager[Subscription]: ...


def _ids(values: Iterable[uuid.UUID | str | None]) -> frozenset[str]:
    """Flow run ids as 32 lowercase hex digits, from UUIDs or text; None is skipped."""
    return frozenset(
        value.hex
        if isinstance(value, uuid.UUID)
        else value
        if len(value) == 32
        else value.replace("-", "").lower()
        for value in set(values)
        if value is not None
    )


class LocalNotifier:
    """Wakes the subscribers of this process. `publish` is safe from any thread."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    async def stop(self) -> None:
        self._loop = None

    def publish(self, flow_run_ids: Iterable[uuid.UUID | str | None]) -> None:
        """Wake the subscribers of these flow runs (and those of all runs)."""
        if self._subscriptions:  # a subscriber added meanwhile reads the database first
            ids = _ids(flow_run_ids)
            if ids:
                self._call_in_loop(self._deliver, ids)

    @contextlib.asynccontextmanager
    async def subscribe(self, flow_run_id: uuid.UUID | None = None) -> AsyncIterator[Subscription]:
        """Wake-ups for `flow_run_id` (None: for every flow run) while the block runs."""
        subscription = Subscription(flow_run_id)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def wake_all(self) -> None:
        """Wake every subscriber: something may have changed that nobody was told about."""
        self._call_in_loop(self._deliver, None)

    def _deliver(self, ids: frozenset[str] | None) -> None:
        for subscription in list(self._subscriptions):
            subscription._notify(ids)

    def _call_in_loop(self, function: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not started (or stopped): nobody is subscribed
        if threading.get_ident() == self._loop_thread:
            function(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(function, *args)


def payloads(ids: Iterable[str]) -> list[str]:
    """NOTIFY payloads listing `ids`, each under PostgreSQL's size limit."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for text in ids:
        if current and size + len(text) + 1 > PAYLOAD_MAX_BYTES:
            chunks.append(",".join(current))
            current, size = [], 0
        current.append(text)
        size += len(text) + 1
    if current:
        chunks.append(",".join(current))
    return chunks


def parse_payload(payload: str) -> frozenset[str] | None:
    """The flow run ids of a payload; None for "everything" (or a payload we cannot read)."""
    ids = frozenset(payload.split(","))
    if payload == EVERYTHING or not all(len(part) == 32 for part in ids):
        return None
    return ids


class _Backoff:
    """Delays between reconnection attempts: 0.5 s doubling to 10 s, with jitter."""

    def __init__(self, first: float = 0.5, longest: float = 10.0) -> None:
        self.first, self.longest = first, longest
        self.attempts = 0

    def next(self) -> float:
        delay = min(self.longest, self.first * 2.0**self.attempts)
        self.attempts += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempts = 0


class PostgresNotifier(LocalNotifier):
    """A `LocalNotifier` whose wake-ups also travel through PostgreSQL LISTEN/NOTIFY.

    Two connections per process: one LISTENs (in a background task), one
    sends NOTIFY. `publish` wakes local subscribers at once and queues the ids
    for the sender, which merges whatever queued while it was busy into as
    few NOTIFYs as fit. The listener ignores its own process's notifications
    (their sender's backend pid), since it woke its subscribers already.

    Args:
        url: the store's URL (`postgresql+psycopg://...`).
        channel: the NOTIFY channel.
    """

    def __init__(self, url: str, *, channel: str = CHANNEL) -> None:
        super().__init__()
        self.conninfo = "postgresql://" + url.split("://", 1)[1]
        self.display_url = display_url(url)
        self.channel = channel
        # Visible in pg_stat_activity, per process: operators (and tests) find them.
        self.application_name = f"headwater-notify-{os.getpid()}"
        self.listening = False
        self._sender_pid: int | None = None
        self._outbox: set[str] = set()
        self._outbox_everything = False
        self._outbox_lock = threading.Lock()
        self._outbox_signalled = False
        self._outbox_ready: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await super().start()
        self._outbox_ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(), name="headwater-notify-listen"),
            asyncio.create_task(self._send(), name="headwater-notify-send"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await super().stop()

    def publish(self, flow_run_ids: Iterable[uuid.UUID | str | None]) -> None:
        ids = _ids(flow_run_ids)
        if not ids:
            return
        if self._subscriptions:
            self._call_in_loop(self._deliver, ids)
        with self._outbox_lock:
            if len(self._outbox) + len(ids) > _MAX_OUTBOX_IDS:
                self._outbox_everything = True
                self._outbox.clear()
            elif not self._outbox_everything:
                self._outbox.update(ids)
            if self._outbox_signalled:
                return
            self._outbox_signalled = True
        self._call_in_loop(self._signal_outbox)

    def _signal_outbox(self) -> None:
        if self._outbox_ready is not None:
            self._outbox_ready.set()

    def _take_outbox(self) -> list[str]:
        with self._outbox_lock:
            ids, everything = self._outbox, self._outbox_everything
            self._outbox, self._outbox_everything = set(), False
            self._outbox_signalled = False
        return [EVERYTHING] if everything else payloads(ids)

    async def _connect(self, role: str) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(
            self.conninfo, application_name=f"{self.application_name}-{role}", **_CONNECT_OPTIONS
        )

    async def _send(self) -> None:
        """Send the queued ids as NOTIFYs; on a broken connection, reconnect and resend once."""
        assert self._outbox_ready is not None
        connection: Any = None
        backoff = _Backoff()
        try:
            while True:
                await self._outbox_ready.wait()
                self._outbox_ready.clear()
                messages = self._take_outbox()
                for attempt in (1, 2):
                    try:
                        if connection is None or connection.closed:
                            connection = await self._connect("send")
                            self._sender_pid = connection.info.backend_pid
                        for payload in messages:
                            await connection.execute(
                                "SELECT pg_notify(%s, %s)", (self.channel, payload)
                            )
                        backoff.reset()
                        break
                    except Exception as exc:  # any failure: reconnect, the next wake-up retries
                        if connection is not None:
                            await connection.close()
                        connection = None
                        if attempt == 2:
                            logger.warning(
                                "Could not send run notifications to %s (%s: %s); other "
                                "replicas see these changes at their next poll.",
                                self.display_url,
                                type(exc).__name__,
                                exc,
                            )
                            await asyncio.sleep(backoff.next())
        finally:
            if connection is not None:
                await connection.close()

    async def _listen(self) -> None:
        """LISTEN until cancelled, reconnecting with backoff whenever the connection breaks."""
        backoff = _Backoff()
        lost = False
        while True:
            try:
                async with await self._connect("listen") as connection:
                    await connection.execute(f"LISTEN {self.channel}")
                    self.listening = True
                    backoff.reset()
                    if lost:
                        logger.warning(
                            "Listening for run notifications again on %s.", self.display_url
                        )
                        # Changes made while we were deaf: let every subscriber look.
                        self.wake_all()
                    lost = False
                    while True:
                        async for notify in connection.notifies(timeout=_LISTEN_CHECK_INTERVAL):
                            if notify.pid != self._sender_pid:
                                self._deliver(parse_payload(notify.payload))
                        async with asyncio.timeout(10):
                            await connection.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect after a pause
                self.listening = False
                if not lost:
                    logger.warning(
                        "Lost the run-notification connection to %s (%s: %s); streams poll "
                        "until it is back.",
                        self.display_url,
                        type(exc).__name__,
                        exc,
                    )
                    self.wake_all()
                lost = True
                await asyncio.sleep(backoff.next())


def create_notifier(url: str) -> LocalNotifier:
    """The notifier for the store at `url`: PostgreSQL LISTEN/NOTIFY, else in process."""
    if url.startswith(("postgresql", "postgres:")):
        return PostgresNotifier(url)
    return LocalNotifier()


def flow_run_ids_of(batch: Batch) -> set[str | None]:
    """The flow runs a recorder batch touches: its runs, and those of its task runs and logs."""
    ids: set[str | None] = set(batch.flow_runs)
    ids.update(row[1] for row in batch.task_runs.values())
    ids.update(row[1] for row in batch.states)
    ids.update(row[1] for row in batch.logs)
    return ids


def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


NotifierDep = Annotated[Notifier, Depends(get_notifier)]
