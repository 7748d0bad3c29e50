"""Timeouts for sync code: a signal in the main thread, an injected exception elsewhere.

In the main thread (and when no other alarm is set) SIGALRM interrupts even
blocking calls such as `time.sleep`. In other threads the exception is
injected with `PyThreadState_SetAsyncExc`, which takes effect at the next
Python bytecode: a call blocked inside C code is interrupted only when it
returns. Async code uses `asyncio.timeout` instead (see the async drivers).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Raise `exc_type` in thread `thread_id` at its next bytecode (None clears it)."""
    import ctypes

    # No argtypes: None must reach C as NULL (which clears), not as Py_None.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), None if exc_type is None else ctypes.py_object(exc_type)
    )


@contextlib.contextmanager
def sync_timeout(seconds: float | None, exc_type: type[BaseException]) -> Iterator[None]:
    """Raise `exc_type` in the block if it runs longer than `seconds`."""
    if seconds is None:
        yield
        return
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
    ):
        with _alarm(seconds, exc_type):
            yield
        return
    with _injected(seconds, exc_type):
        yield


@contextlib.contextmanager
def _alarm(seconds: float, exc_type: type[BaseException]) -> Iterator[None]:
    def expire(_signum: int, _frame: Any) -> None:
        raise exc_type()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _injected(seconds: float, exc_type: type[BaseException]) -> Iterator[None]:
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"active": True, "fired": False}

    def expire() -> None:
        with lock:
            if state["active"]:
                state["fired"] = True
                _set_async_exc(thread_id, exc_type)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["active"] = False
            timer.cancel()
            fired = state["fired"]
        if fired:
            # The injected exception may still be pending; clear it so it cannot
            # surface later in unrelated code, then raise it here deliberately.
            _set_async_exc(thread_id, None)
    if fired:
        raise exc_type()
