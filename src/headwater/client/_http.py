"""`HttpBackend`: the recorder's batches go to a Headwater server, or to the spool.

How the work is split:

- The recorder calls `write(batch)` from its flush thread, every ~10 ms, with
  everything recorded since the last flush: one request per batch.
- `write` sends the batch, retrying transient failures for up to
  `retry_seconds`. If the server still does not answer, the batch is spooled
  (a durable local file) and `write` returns normally: the records are safe,
  so the recorder has nothing to retry and memory does not grow.
- While this process has spooled files not yet delivered, later batches go
  straight to the spool behind them (never overtaking them, so an older state
  of a run cannot overwrite a newer one), and a delivery thread sends the
  spool, oldest first, with backoff, until it is empty. The same thread
  delivers spool left by earlier processes, found by `open()`.
- A batch holding the final state of a root flow run is the one a user waits
  for: if it is spooled, `write` waits up to `retry_seconds` for the delivery
  thread to get it through, and otherwise logs an error naming the server and
  the spool, and remembers the run so `check_delivered` can raise
  `RecordsNotDelivered` for it.
- `write` raises only when a batch can be neither delivered nor spooled (for
  example a full disk): then the recorder keeps it queued and retries.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from headwater.client import _encoding
from headwater.client._errors import RecordsNotDelivered
from headwater.client._spool import Spool
from headwater.client._transport import Answer, Sender, Verdict
from headwater.core.records import Batch

logger = logging.getLogger(__name__)

#: How long one write retries before spooling, and how long the final state
#: of a root flow run waits for a spool to drain before the run reports failure.
RETRY_SECONDS = 10.0
#: Rows per request; halved whenever the server answers 413.
# 5,000 rows (~1,100 task runs) per request: larger bodies cost the server memory
# (one model per row while validating) without sending any faster.
MAX_ROWS_PER_REQUEST = 5_000


class HttpBackend:
    """Writes recorder batches to `POST {api_url}/records`; spools them while it cannot.

    Example:
        backend = HttpBackend("http://127.0.0.1:4200/api", spool_directory=home / "spool" / "x")
        recorder = Recorder(backend)
    """

    def __init__(
        self,
        api_url: str,
        *,
        spool_directory: Path,
        api_key: str | None = None,
        retry_seconds: float | None = None,
        compress_min_bytes: int | None = 65536,
        max_rows_per_request: int | None = None,
    ) -> None:
        self.api_url = api_url
        self.spool = Spool(spool_directory)
        self.retry_seconds = RETRY_SECONDS if retry_seconds is None else retry_seconds
        self.max_rows = max_rows_per_request or MAX_ROWS_PER_REQUEST
        self._sender = Sender(api_url, api_key=api_key, compress_min_bytes=compress_min_bytes)
        self._opened = False
        #: the newest file this process spooled; while it exists, batches queue behind it
        self._own_newest: Path | None = None
        #: root flow runs whose final state is in the spool: id -> (name, file)
        self._unfinished: dict[str, tuple[str, Path]] = {}
        self._last_reason = ""
        #: no delivery attempt before this `time.monotonic()` (the server's Retry-After)
        self._resume_at = 0.0
        #: whether the last delivery attempt failed
        self._failing = False
        self._delivery: threading.Thread | None = None
        self._delivery_lock = threading.Lock()
        self._progress = threading.Condition()
        self._stopping = threading.Event()
        #: set to make the delivery thread try now instead of at the end of its backoff
        self._wake = threading.Event()

    # -- the Writer protocol ------------------------------------------------------
    def open(self, *, deliver: bool = True) -> None:
        """Make the HTTP client (importing httpx) and start delivering spool left behind."""
        if self._opened:
            return
        self._sender.open()
        self._opened = True
        left = self.spool.pending()
        if left and deliver:
            logger.info(
                "Delivering %d batch(es) of run records spooled earlier at %s to %s.",
                len(left),
                self.spool.directory,
                self.api_url,
            )
            self._ensure_delivery()

    def write(self, batch: Batch) -> None:
        """Deliver `batch` in one request (more only past `max_rows`), or spool it."""
        self.open()
        finished = _encoding.finished_root_runs(batch)
        payload = _encoding.batch_payload(batch)
        path: Path | None
        if self._queued_behind_spool():
            path = self._spool_payload(payload)
        else:
            path = self._deliver_or_spool(payload)
        if path is not None and finished:
            self._await_final(finished, path)

    def active_runs(self, host: str) -> list[tuple[uuid.UUID, str]]:
        """Always empty: the server, not its clients, detects crashed runs.

        A server's runs come from many hosts and processes; its own services
        mark runs whose heartbeats stopped as Crashed. A client judging them
        from here could race another client or the server.
        """
        return []

    def mark_crashed(
        self, flow_run_ids: Sequence[uuid.UUID | str], message: str, now: float
    ) -> None:
        """Nothing to do: see `active_runs`."""

    def close(self) -> None:
        """Finish a delivery that is making progress, then stop; the rest stays spooled."""
        delivery = self._delivery
        if delivery is not None and delivery is not threading.current_thread():
            # A short script that found spool left behind must not drop the
            # delivery half-way at exit: wait while files keep going through.
            left = len(self.spool.pending())
            while delivery.is_alive() and not self._failing:
                delivery.join(timeout=min(self.retry_seconds, 2.0))
                now_left = len(self.spool.pending())
                if now_left >= left:
                    break
                left = now_left
        self._stopping.set()
        self._wake.set()
        with self._progress:
            self._progress.notify_all()
        if delivery is not None and delivery is not threading.current_thread():
            delivery.join(timeout=self.retry_seconds)
        self._sender.close()
        self._opened = False
        reported = {path for _name, path in self._unfinished.values()}
        if self._queued_behind_spool() and self._own_newest not in reported:
            logger.warning(
                "%d batch(es) of run records could not be delivered to %s yet; they are "
                "spooled at %s and the next Headwater process that reaches the server "
                "delivers them (or run `headwater spool flush`).",
                len(self.spool.pending()),
                self.api_url,
                self.spool.directory,
            )

    # -- delivery status ----------------------------------------------------------
    def undelivered(self, flow_run_id: str) -> RecordsNotDelivered | None:
        """The error for `flow_run_id` if its final state is still only in the spool."""
        entry = self._unfinished.get(flow_run_id)
        if entry is None:
            return None
        name, path = entry
        if not path.exists():
            self._unfinished.pop(flow_run_id, None)
            return None
        return RecordsNotDelivered(
            flow_run_id=flow_run_id,
            flow_run_name=name,
            api_url=self.api_url,
            spool_directory=self.spool.directory,
            reason=self._last_reason,
        )

    def drain(self, deadline: float) -> tuple[int, int]:
        """Deliver the spool now, retrying until `deadline` (a `time.monotonic()` value).

        Returns (files delivered or rejected, files left). Used by `flush_spool`.
        """
        self.open(deliver=False)
        done = 0
        attempt = 0
        while True:
            with self.spool.delivery_lock() as locked:
                if locked:
                    handled, answer = self._deliver_spool()
                    done += handled
                    if handled:
                        attempt = 0
                else:
                    answer = Answer(Verdict.UNAVAILABLE, "another process is delivering it")
            left = len(self.spool.pending())
            if not left or time.monotonic() >= deadline:
                return done, left
            wait = self._sender.backoff(attempt, answer.retry_after)
            time.sleep(max(0.05, min(wait, deadline - time.monotonic())))
            attempt += 1

    # -- sending ------------------------------------------------------------------
    def _queued_behind_spool(self) -> bool:
        newest = self._own_newest
        if newest is not None and not newest.exists():
            self._own_newest = newest = None
        return newest is not None

    def _deliver_or_spool(self, payload: _encoding.Payload) -> Path | None:
        """Send `payload` with retries; spool what does not get through. Return the spool file."""
        pieces = _encoding.split(payload, self.max_rows)
        deadline = self._sender.clock() + self.retry_seconds
        while pieces:
            body = _encoding.dumps(pieces[0])
            answer = self._sender.send(body, deadline)
            if answer.verdict is Verdict.TOO_LARGE and _encoding.row_count(pieces[0]) > 1:
                self.max_rows = max(1, _encoding.row_count(pieces[0]) // 2)
                pieces[:1] = _encoding.split(pieces[0], self.max_rows)
                continue
            if answer.verdict is Verdict.UNAVAILABLE:
                self._went_unavailable(answer)
                return self._spool_payload(_encoding.merge(pieces))
            if answer.verdict is not Verdict.DELIVERED:
                self._reject(body, answer)
            pieces.pop(0)
        return None

    def _spool_payload(self, payload: _encoding.Payload) -> Path:
        path = self.spool.add(_encoding.dumps(payload))
        self._own_newest = path
        self._ensure_delivery()
        return path

    def _went_unavailable(self, answer: Answer) -> None:
        self._last_reason = answer.reason
        if answer.retry_after:
            self._resume_at = time.monotonic() + answer.retry_after
        logger.warning(
            "The Headwater server at %s is unavailable (%s). Run records are spooled at %s "
            "and delivered when it answers again.",
            self.api_url,
            answer.reason,
            self.spool.directory,
        )

    def _reject(self, body: bytes, answer: Answer, name: str | None = None) -> None:
        path = self.spool.reject(body, f"{self.api_url}: {answer.reason}", name)
        logger.error(
            "The Headwater server at %s rejected a batch of run records (%s). The batch was "
            "saved to %s for inspection and will not be sent again.",
            self.api_url,
            answer.reason,
            path,
        )

    def _await_final(self, finished: dict[str, str], path: Path) -> None:
        """Give the delivery thread `retry_seconds` to deliver a run's final state.

        Somebody is waiting for this run: the delivery thread is woken to try at
        once, and again every 0.2 s, instead of sleeping out its backoff.
        """
        deadline = time.monotonic() + self.retry_seconds
        with self._progress:
            while path.exists() and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._resume_at = 0.0
                self._wake.set()
                self._progress.wait(min(remaining, 0.2))
        if not path.exists():
            return
        for run_id, name in finished.items():
            self._unfinished[run_id] = (name, path)
            logger.error("%s", self.undelivered(run_id))

    # -- the delivery thread ------------------------------------------------------
    def _ensure_delivery(self) -> None:
        with self._delivery_lock:
            if self._delivery is None and not self._stopping.is_set():
                self._delivery = threading.Thread(
                    target=self._deliver_loop, name="headwater-spool-delivery", daemon=True
                )
                self._delivery.start()

    def _deliver_loop(self) -> None:
        attempt = 0
        while True:
            self._wake.wait(max(0.0, self._resume_at - time.monotonic()))
            self._wake.clear()
            if self._stopping.is_set():
                break
            with self.spool.delivery_lock() as locked:
                handled, answer = self._deliver_spool() if locked else (0, None)
            with self._progress:
                self._progress.notify_all()
            if handled:
                if attempt:
                    logger.info("The Headwater server at %s answers again.", self.api_url)
                attempt = 0
            with self._delivery_lock:
                if not self.spool.pending():
                    self._delivery = None
                    return
            if answer is None:
                wait = 0.2  # another process is delivering the spool: look again shortly
            elif answer.verdict is Verdict.DELIVERED:
                continue  # more files arrived meanwhile
            else:
                wait = self._sender.backoff(attempt, answer.retry_after)
                attempt += 1
            self._resume_at = time.monotonic() + max(wait, 0.05)
        with self._delivery_lock:
            self._delivery = None

    def _deliver_spool(self) -> tuple[int, Answer]:
        """With the spool locked: send files oldest first until empty or the server fails.

        Consecutive files are sent together, up to `max_rows` rows per request.
        Returns (files handled, the last answer).
        """
        handled = 0
        answer = Answer(Verdict.DELIVERED)
        while not self._stopping.is_set():
            group, payloads = self._next_group()
            if not group:
                break
            answer = self._send_group(group, payloads)
            self._failing = answer.verdict is Verdict.UNAVAILABLE
            if self._failing:
                self._last_reason = answer.reason
                break
            self.spool.remove(group)
            handled += len(group)
            with self._progress:
                self._progress.notify_all()
        return handled, answer

    def _next_group(self) -> tuple[list[Path], list[_encoding.Payload]]:
        group: list[Path] = []
        payloads: list[_encoding.Payload] = []
        rows = 0
        for path in self.spool.pending():
            try:
                payload = _encoding.loads(path.read_bytes())
            except FileNotFoundError:
                continue  # delivered by a process that held the lock before us
            except ValueError as exc:
                self._reject(path.read_bytes(), Answer(Verdict.REJECTED, f"unreadable: {exc}"))
                self.spool.remove([path])
                continue
            count = _encoding.row_count(payload)
            if group and rows + count > self.max_rows:
                break
            group.append(path)
            payloads.append(payload)
            rows += count
        return group, payloads

    def _send_group(self, group: list[Path], payloads: list[_encoding.Payload]) -> Answer:
        """One try at a group; a refused group is retried file by file to find the bad one."""
        pieces = _encoding.split(_encoding.merge(payloads), self.max_rows)
        for index, piece in enumerate(pieces):
            body = _encoding.dumps(piece)
            answer = self._sender.post(body)
            if answer.verdict is Verdict.TOO_LARGE and _encoding.row_count(piece) > 1:
                self.max_rows = max(1, _encoding.row_count(piece) // 2)
                return Answer(Verdict.UNAVAILABLE, answer.reason, retry_after=0.0)
            if answer.verdict is Verdict.UNAVAILABLE:
                return answer
            if answer.verdict is not Verdict.DELIVERED:
                if len(group) > 1:
                    return self._send_one_by_one(group, payloads)
                name = group[0].name if len(pieces) == 1 else f"{index}-{group[0].name}"
                self._reject(body, answer, name)
        return Answer(Verdict.DELIVERED)

    def _send_one_by_one(self, group: list[Path], payloads: list[_encoding.Payload]) -> Answer:
        for index, (path, payload) in enumerate(zip(group, payloads, strict=True)):
            answer = self._send_group([path], [payload])
            if answer.verdict is Verdict.UNAVAILABLE:
                # Files before this one are through: drop them, keep the rest.
                self.spool.remove(group[:index])
                return answer
        return Answer(Verdict.DELIVERED)
