"""Exceptions. Everything Headwater raises on purpose derives from `HeadwaterError`."""

from __future__ import annotations

from pathlib import Path

from headwater.core.errors import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    HeadwaterError,
    UnfinishedRun,
)

__all__ = [
    "Abort",
    "AcquireConcurrencySlotTimeoutError",
    "AmbiguousIdError",
    "CancelSignal",
    "CancelledRun",
    "ConcurrencySlotAcquisitionError",
    "ConcurrencySlotsUnavailable",
    "ConfigurationError",
    "Conflict",
    "CrashedRun",
    "EngineSignal",
    "FailedRun",
    "FlowPauseError",
    "FlowPauseTimeout",
    "FlowRunTimeoutError",
    "HeadwaterError",
    "InvalidRunInput",
    "MappingLengthMismatch",
    "MappingMissingIterable",
    "MissingContextError",
    "NotReady",
    "ObjectNotFound",
    "ParameterBindError",
    "ParameterTypeError",
    "Pause",
    "PayloadTooLarge",
    "RecordsNotDelivered",
    "ResultStorageError",
    "SerializationError",
    "StoreError",
    "TaskRunTimeoutError",
    "TerminationSignal",
    "UnfinishedRun",
    "UnhashableInputError",
]


class ConfigurationError(HeadwaterError):
    """A setting or profile has a bad value."""


class ParameterTypeError(HeadwaterError, TypeError):
    """Flow parameters failed validation against the flow's type hints."""


class ParameterBindError(HeadwaterError, TypeError):
    """The arguments do not fit the function's signature."""


class MappingLengthMismatch(HeadwaterError, ValueError):
    """`.map()` was given iterables of different lengths."""


class MappingMissingIterable(HeadwaterError, ValueError):
    """`.map()` was given no iterable to map over."""


class TaskRunTimeoutError(HeadwaterError, TimeoutError):
    """A task run exceeded its `timeout_seconds`."""


class FlowRunTimeoutError(HeadwaterError, TimeoutError):
    """A flow run exceeded its `timeout_seconds`."""


class MissingContextError(HeadwaterError, RuntimeError):
    """Something that needs a run context was used outside of a flow or task run."""


class StoreError(HeadwaterError):
    """The run store cannot be opened, migrated or written."""


class ObjectNotFound(HeadwaterError):
    """A flow run, task run or other object with that id or name does not exist."""


class Conflict(HeadwaterError):
    """The request contradicts the stored state (e.g. a rejected state transition)."""


class PayloadTooLarge(HeadwaterError):
    """A request body, or a field of it, is over its size limit."""


class NotReady(HeadwaterError):
    """The server cannot serve yet: its database is unreachable or not at the schema head."""


class RecordsNotDelivered(HeadwaterError):
    """A flow run finished, but its final state reached only the local spool, not the server.

    Nothing is lost: the records are durable in the spool and are delivered by
    the next Headwater process that reaches the server, or by
    `headwater spool flush`.
    """

    def __init__(
        self,
        *,
        flow_run_id: str,
        flow_run_name: str,
        api_url: str,
        spool_directory: Path,
        reason: str,
    ) -> None:
        self.flow_run_id = flow_run_id
        self.flow_run_name = flow_run_name
        self.api_url = api_url
        self.spool_directory = spool_directory
        self.reason = reason
        super().__init__(
            f"Flow run {flow_run_name!r} ({flow_run_id}) finished, but the Headwater server at "
            f"{api_url} was unreachable ({reason or 'no answer'}), so its final state was not "
            f"delivered. Its records are spooled at {spool_directory} and will be delivered by "
            "the next Headwater process that reaches the server, or now by "
            "`headwater spool flush`."
        )


class AmbiguousIdError(ObjectNotFound):
    """An id prefix matches more than one object."""


class InvalidParameters(HeadwaterError, ValueError):
    """Parameters for a deployment's run are missing or do not match its parameter schema."""


class EngineSignal(BaseException):
    """Engine-internal control flow. A BaseException so user `except Exception` can't eat it."""


class Abort(EngineSignal):
    """Stop the run without changing its state."""


class Pause(EngineSignal):
    """Pause the run (human-in-the-loop)."""


class CancelSignal(EngineSignal):
    """The run was cancelled from outside (its worker asked its process to stop)."""


class TerminationSignal(EngineSignal):
    """The process received SIGTERM while a run was executing."""

    def __init__(self, signal: int) -> None:
        super().__init__(f"Process received signal {signal}")
        self.signal = signal


class ConcurrencySlotsUnavailable(HeadwaterError):
    """A concurrency limit has no free slots now (the API's 423 Locked); ask again later."""

    def __init__(
        self, message: str, *, limit: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        #: the limit that lacked slots
        self.limit = limit
        #: seconds until enough slots decay (None: only a release frees them)
        self.retry_after = retry_after


class ConcurrencySlotAcquisitionError(HeadwaterError):
    """Concurrency slots could not be taken: a limit does not exist (strict), or retries ran out."""


class AcquireConcurrencySlotTimeoutError(ConcurrencySlotAcquisitionError, TimeoutError):
    """Concurrency slots did not become free within `timeout_seconds`."""


class SerializationError(HeadwaterError, ValueError):
    """A result cannot be serialized (or deserialized) by the chosen result serializer."""


class UnhashableInputError(HeadwaterError, ValueError):
    """A cache policy cannot make a key from a task's inputs."""


class ResultStorageError(HeadwaterError):
    """`result_storage` names a location that cannot be used, or a record cannot be read."""


class FlowPauseError(HeadwaterError, RuntimeError):
    """`pause_flow_run` / `suspend_flow_run` cannot pause here (not in a flow run, in a task,
    or a run without a deployment asked to suspend)."""


class FlowPauseTimeout(HeadwaterError, TimeoutError):
    """A paused flow run was not resumed within the pause's `timeout`."""


class InvalidRunInput(InvalidParameters):
    """Input given to resume a paused run (or sent to a run) does not match its schema."""
