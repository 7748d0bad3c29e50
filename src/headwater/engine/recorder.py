"""The recorder: run records queue in memory and a background thread writes them in batches.

The hot path (a task run changing state) only appends a tuple under a lock,
which costs well under a microsecond. A writer thread flushes every
`recorder_flush_interval` seconds (10 ms by default), or sooner when the
queue is large or somebody waits for durability, as one transaction.

Durability: `commit()` returns a future that completes once everything
recorded before the call is written. The root flow run waits for it before
returning; interpreter exit and `os.fork()` flush too. A SIGKILL loses at
most the records of the last flush interval.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING

from headwater.core.records import Batch, Row

if TYPE_CHECKING:
    from headwater.store.writer import Writer

logger = logging.getLogger(__name__)

#: Transient write failures are retried this many times before records are kept
#: for the next flush; the error is logged, never raised into user code.
_WRITE_ATTEMPTS = 5


class Recorder:
    """Queues run records and writes them through a `Writer` in the background."""

    def __init__(
        self, writer: Writer, *, flush_interval: float = 0.01, batch_size: int = 5000
    ) -> None:
        self._writer = writer
        self._interval = flush_interval
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._batch = Batch()
        self._waiters: list[Future[None]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()

    @property
    def backend(self) -> Writer:
        """What the records go through: a store writer, or an `HttpBackend`."""
        return self._writer

    # -- hot path -----------------------------------------------------------------
    def flow(self, row: Row) -> None:
        with self._lock:
            self._batch.flows[row[0]] = row
        self._ensure_started()

    def flow_run(self, row: Row, *states: Row) -> None:
        with self._lock:
            self._batch.flow_runs[row[0]] = row
            self._batch.states.extend(states)
        self._ensure_started()

    def task_run(self, row: Row, *states: Row) -> None:
        with self._lock:
            batch = self._batch
            batch.task_runs[row[0]] = row
            batch.states.extend(states)
        if len(batch.states) >= self._batch_size:
            self._wakeup.set()
            if len(batch.states) >= 10 * self._batch_size:
                # The writer cannot keep up: hold this producer back rather than
                # let memory grow without bound.
                self.commit().result()
        if self._thread is None:
            self._ensure_started()

    def merge(self, batch: Batch) -> None:
        """Queue records made elsewhere (e.g. by a process-pool child)."""
        with self._lock:
            self._batch.merge(batch)
        self._ensure_started()

    def log(self, row: Row) -> None:
        with self._lock:
            self._batch.logs.append(row)
        if self._thread is None:
            self._ensure_started()

    def event(self, row: Row) -> None:
        """Queue an event (a `columns.EVENT` row), written with the next batch."""
        with self._lock:
            self._batch.events.append(row)
        if self._thread is None:
            self._ensure_started()

    # -- durability ---------------------------------------------------------------
    def commit(self) -> Future[None]:
        """A future that completes when everything recorded so far is written."""
        future: Future[None] = Future()
        with self._lock:
            self._waiters.append(future)
        self._ensure_started()
        self._wakeup.set()
        return future

    def flush(self) -> None:
        """Write what is queued now, in the calling thread."""
        with self._flush_lock:
            with self._lock:
                batch, self._batch = self._batch, Batch()
                waiters, self._waiters = self._waiters, []
            error: BaseException | None = None
            if len(batch):
                error = self._write(batch)
            for waiter in waiters:
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _write(self, batch: Batch) -> BaseException | None:
        delay = 0.05
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                self._writer.write(batch)
                return None
            except Exception as exc:
                if attempt == _WRITE_ATTEMPTS:
                    logger.error(
                        "Could not write %d run records after %d attempts: %s. They stay "
                        "queued and the next flush retries them.",
                        len(batch),
                        attempt,
                        exc,
                    )
                    with self._lock:
                        batch.merge(self._batch)
                        self._batch = batch
                    return exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        return None  # pragma: no cover - the loop always returns

    # -- lifecycle ----------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._thread is not None or self._closed:
            return
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="headwater-recorder", daemon=True)
            self._thread = thread
        thread.start()

    def _run(self) -> None:
        try:
            self._writer.open()
            from headwater.engine.crash import detect_crashed_runs

            detect_crashed_runs(self._writer)
        except Exception as exc:
            logger.error("Cannot open the run store: %s", exc)
        while not self._closed:
            self._wakeup.wait(self._interval)
            self._wakeup.clear()
            try:
                self.flush()
            except Exception:  # pragma: no cover - flush() handles write errors
                logger.exception("Recorder flush failed")

    def close(self) -> None:
        """Flush everything and stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self.flush()
        self._writer.close()


_recorder: Recorder | None = None
_recorder_lock = threading.Lock()


def get_recorder() -> Recorder:
    """The process's recorder, writing to the configured store or server."""
    global _recorder
    recorder = _recorder
    if recorder is not None:
        return recorder
    with _recorder_lock:
        if _recorder is None:
            from headwater.client import open_backend
            from headwater.settings import get_settings

            settings = get_settings()
            _recorder = Recorder(
                open_backend(settings),
                flush_interval=settings.recorder_flush_interval,
                batch_size=settings.recorder_batch_size,
            )
        return _recorder


def close_recorder() -> None:
    """Flush and close the process's recorder; the next run opens a new one."""
    global _recorder
    with _recorder_lock:
        recorder, _recorder = _recorder, None
    if recorder is not None:
        recorder.close()


def _forget_in_child() -> None:
    # The child has a copy of the parent's queue (written by the parent) and no
    # writer thread; it must start from scratch with its own connection.
    global _recorder
    _recorder = None


def _flush_before_fork() -> None:
    if _recorder is not None:
        _recorder.flush()


atexit.register(close_recorder)
os.register_at_fork(before=_flush_before_fork, after_in_child=_forget_in_child)
