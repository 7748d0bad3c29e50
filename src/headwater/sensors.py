"""Sensors: a function polled on an interval that emits an event when its condition holds.

    from pathlib import Path
    from headwater import serve
    from headwater.events import sensor

    @sensor(interval=30, edge=True)
    def report_landed() -> dict[str, str] | None:
        path = Path("/data/incoming/report.csv")
        return {"path": str(path)} if path.exists() else None

    serve(report_landed)   # beside deployments too: serve(etl.to_deployment("etl"), report_landed)

What the function returns decides what is emitted:

- None or False: nothing.
- True: the sensor's event (default `sensor.<name>.fired`) about the resource
  `headwater.sensor.<name>`.
- a dict: the same event, with the dict as its payload.
- an `Event`: that event, as it is.

With `edge=True` the sensor emits only when the result turns from falsy to
truthy: once when the file appears, not at every check while it stays.

A sensor function that raises is logged and checked again at the next
interval; the first failure of a streak emits `headwater.sensor.failed` (about
the same resource, with the error in the payload), so an automation can tell
someone the sensor is broken.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from headwater.exceptions import ConfigurationError

if TYPE_CHECKING:
    from headwater.schemas.events import Event

__all__ = ["FAILED_EVENT", "Sensor", "sensor"]

logger = logging.getLogger(__name__)

#: The event a sensor emits when its function starts failing.
FAILED_EVENT = "headwater.sensor.failed"
#: How long stopping waits for a sensor's check in progress.
STOP_TIMEOUT = 10.0


class Sensor:
    """A condition checked every `interval` seconds; build one with `@sensor(...)`.

    Calling the sensor (or `check()`) runs one check and returns the event it
    emitted, or None. `serve()` checks forever; `headwater.serve(...)` serves
    sensors beside deployments.

    Attributes:
        checks: checks run so far (by `check` or `serve`).
        fired: events emitted so far.
        errors: checks that failed (the function raised, or the event could not be sent).
    """

    def __init__(
        self,
        fn: Callable[[], Any],
        *,
        interval: float = 30.0,
        event: str | None = None,
        resource: dict[str, str] | None = None,
        name: str | None = None,
        edge: bool = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@sensor decorates a function, not {type(fn).__name__}")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ConfigurationError(
                f"Sensor interval {interval!r}: give the seconds between checks, a number > 0 "
                "(e.g. interval=30)."
            )
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "sensor")
        if not self.name or "\x00" in self.name:
            raise ConfigurationError(f"Sensor name {self.name!r}: give a non-empty name.")
        self.interval = float(interval)
        self.event = event or f"sensor.{self.name}.fired"
        self.resource: dict[str, str] = {
            "headwater.resource.id": f"headwater.sensor.{self.name}",
            "headwater.resource.name": self.name,
            **(resource or {}),
        }
        self.edge = edge
        self.checks = 0
        self.fired = 0
        self.errors = 0
        self._consecutive_errors = 0
        self._was_true = False
        self._lock = threading.Lock()
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"Sensor({self.name!r}, interval={self.interval:g})"

    def __call__(self) -> Event | None:
        """Run one check: see `check`."""
        return self.check()

    def check(self) -> Event | None:
        """Call the function once and emit what it asks for; the emitted event, or None.

        An exception of the function (or of sending the event) is raised to the
        caller; `serve` logs it and goes on.
        """
        if inspect.iscoroutinefunction(self.fn):
            import asyncio

            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return self._after(lambda: asyncio.run(self.fn()))
            raise RuntimeError(
                f"Sensor {self.name!r} is async and an event loop is running: "
                f"use `await {self.name}.acheck()`."
            )
        return self._after(self.fn)

    async def acheck(self) -> Event | None:
        """`check`, for async code (a sync function runs in a worker thread)."""
        import asyncio

        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn()
            return await asyncio.to_thread(self._after, lambda: result)
        return await asyncio.to_thread(self._after, self.fn)

    def _after(self, call: Callable[[], Any]) -> Event | None:
        with self._lock:  # one check at a time: the edge state is shared
            self.checks += 1
            result = call()
            truthy = bool(result)
            if not truthy or (self.edge and self._was_true):
                self._was_true = truthy
                return None
            event = self._emit(self._event_for(result))
            self._was_true = True  # only once it was sent: a failed send is tried again
            self.fired += 1
            return event

    def _event_for(self, result: Any) -> Event:
        from headwater.schemas.events import Event

        if isinstance(result, Event):
            return result
        if isinstance(result, dict):
            return self._new_event(self.event, result)
        if result is True:
            return self._new_event(self.event, {})
        raise TypeError(
            f"Sensor {self.name!r} returned {type(result).__name__}; return None/False "
            "(nothing to report), True, a dict (the event's payload) or an Event."
        )

    def _new_event(self, name: str, payload: dict[str, Any]) -> Event:
        from headwater.schemas.events import Event

        return Event.model_validate({"event": name, "resource": self.resource, "payload": payload})

    @staticmethod
    def _emit(event: Event) -> Event:
        from headwater.events import emit_event

        sent = emit_event(
            event=event.event,
            resource=dict(event.resource),
            related=[dict(item) for item in event.related] or None,
            payload=event.payload,
            occurred=event.occurred,
            id=event.id,
            follows=event.follows,
        )
        return sent if sent is not None else event

    def _check_safely(self) -> Event | None:
        """One check of `serve`: errors are logged and counted, never raised."""
        try:
            event = self.check()
        except Exception as exc:
            self.errors += 1
            self._consecutive_errors += 1
            logger.exception(
                "Sensor %r failed (%d in a row); checking again in %gs",
                self.name,
                self._consecutive_errors,
                self.interval,
            )
            if self._consecutive_errors == 1:
                self._report_failure(exc)
            return None
        if self._consecutive_errors:
            logger.info("Sensor %r works again", self.name)
        self._consecutive_errors = 0
        return event

    def _report_failure(self, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        try:
            self._emit(self._new_event(FAILED_EVENT, {"error": error}))
        except Exception as send_error:  # e.g. the server is down: the log has it
            logger.warning("Sensor %r: could not report its failure: %s", self.name, send_error)

    def serve(self, *, stop: threading.Event | None = None, checks: int | None = None) -> None:
        """Check now and then every `interval` seconds, until Ctrl-C (or `stop` is set, or
        `checks` checks were run).

        Events go to the backend in use (HEADWATER_API_URL, or the embedded store).
        To have automations act on them without a server, serve the sensor with
        `headwater.serve(sensor)`, which also runs the automations service.
        """
        stop = stop or threading.Event()
        done = 0
        next_check = time.monotonic()
        try:
            while not stop.is_set():
                self._check_safely()
                done += 1
                if checks is not None and done >= checks:
                    return
                # Fixed rate: a slow check does not push every later one back.
                next_check = max(next_check + self.interval, time.monotonic())
                if stop.wait(max(0.0, next_check - time.monotonic())):
                    return
        except KeyboardInterrupt:
            return


@overload
def sensor(fn: Callable[[], Any], /) -> Sensor: ...


@overload
def sensor(
    *,
    interval: float = 30.0,
    event: str | None = None,
    resource: dict[str, str] | None = None,
    name: str | None = None,
    edge: bool = False,
) -> Callable[[Callable[[], Any]], Sensor]: ...


def sensor(
    fn: Callable[[], Any] | None = None,
    /,
    *,
    interval: float = 30.0,
    event: str | None = None,
    resource: dict[str, str] | None = None,
    name: str | None = None,
    edge: bool = False,
) -> Sensor | Callable[[Callable[[], Any]], Sensor]:
    """Make a function (sync or async, no arguments) a `Sensor` checked every `interval` s.

    Args:
        interval: seconds between two checks (the first is at once).
        event: the name of the event emitted when the function returns True or a
            dict (default `sensor.<name>.fired`).
        resource: labels added to the event's resource (by default
            `headwater.resource.id` = `headwater.sensor.<name>` and
            `headwater.resource.name` = name).
        name: the sensor's name (default: the function's).
        edge: emit only when the result turns from falsy to truthy.

    Example:
        >>> @sensor(interval=60)
        ... def orders_waiting() -> dict[str, int] | None:
        ...     count = count_unprocessed_orders()
        ...     return {"count": count} if count else None
    """
    options: dict[str, Any] = {
        "interval": interval,
        "event": event,
        "resource": resource,
        "name": name,
        "edge": edge,
    }
    if fn is not None:
        return Sensor(fn, **options)

    def decorate(function: Callable[[], Any]) -> Sensor:
        return Sensor(function, **options)

    return decorate


@contextlib.contextmanager
def serving(sensors: Sequence[Sensor]) -> Iterator[threading.Event]:
    """Serve `sensors` in background threads while the block runs; the yielded event stops
    them early. Leaving the block stops them (a check in progress may finish first)."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=item.serve,
            kwargs={"stop": stop},
            name=f"headwater-sensor-{item.name}",
            daemon=True,
        )
        for item in sensors
    ]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        deadline = time.monotonic() + STOP_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
