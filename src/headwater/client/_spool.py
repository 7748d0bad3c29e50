"""The spool: request bodies that could not be delivered yet, one durable file each.

Layout, under `$HEADWATER_HOME/spool/<server>/`:

    <ns>-<pid>-<seq>.json       a request body waiting for delivery
    .lock                       held (flock) by the one process delivering files
    rejected/<name>.json        a body the server refused (4xx), kept for inspection
    rejected/<name>.error.txt   why it was refused

A file is written to a temporary name, fsync'd, renamed into place and the
directory fsync'd, so a crash (even SIGKILL or power loss) leaves either the
whole body or nothing. Names sort in the order the bodies were produced
within a process (nanoseconds, kept increasing, then pid and a sequence
number), and files are delivered in that order and deleted only once the
server has answered 2xx, so a crash during delivery means a resend, which the
idempotent endpoint absorbs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SUFFIX = ".json"


class Spool:
    """One server's spool directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rejected_directory = directory / "rejected"
        self._last_ns = 0
        self._sequence = 0
        self._name_lock = threading.Lock()
        # flock() locks belong to an open file, so two threads of one process
        # exclude each other too; the thread lock spares them the system call.
        self._thread_lock = threading.Lock()

    def pending(self) -> list[Path]:
        """Spooled bodies, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return [
            self.directory / name
            for name in sorted(names)
            if name.endswith(SUFFIX) and not name.startswith(".")
        ]

    def add(self, body: bytes) -> Path:
        """Store `body` durably; return its file."""
        path = self.directory / self._next_name()
        _write_durably(path, body)
        return path

    def reject(self, body: bytes, reason: str, name: str | None = None) -> Path:
        """Keep a body the server refused in `rejected/`, with the reason beside it."""
        path = self.rejected_directory / (name or self._next_name())
        _write_durably(path, body)
        path.with_suffix(".error.txt").write_text(reason + "\n")
        return path

    @staticmethod
    def remove(paths: list[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @contextlib.contextmanager
    def delivery_lock(self) -> Iterator[bool]:
        """Try to become the one process delivering this spool; yields whether it did."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                _held_locks.add(fd)
                try:
                    yield True
                finally:
                    _held_locks.discard(fd)
            finally:
                os.close(fd)  # closing the file releases the lock
        finally:
            self._thread_lock.release()

    def _next_name(self) -> str:
        with self._name_lock:
            # Wall-clock nanoseconds so that files of successive processes sort
            # in time; never backwards within a process, whatever the clock does.
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            self._sequence += 1
            return f"{self._last_ns:020d}-{os.getpid()}-{self._sequence:06d}{SUFFIX}"


#: Lock files this process holds open. A forked child inherits them, and a
#: flock() lasts until every copy is closed: the child closes its copies so
#: that a long-lived child (a process pool) cannot hold the spool forever.
_held_locks: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in list(_held_locks):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held_locks.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
