"""Cache lookups, result records and per-key locks for one task run.

The task engine calls in here only for tasks whose results persist (see
`engine/results.py`). For such a run:

1. the cache key is computed from the resolved inputs (the policy, or the
   rendered `result_storage_key`);
2. a record under that key that has not expired is a cache hit: the run ends
   Completed, named "Cached", with the stored value, without running;
3. otherwise the run takes the key's lock (a lock per key among the threads
   of this process, plus an `flock` beside the record for local storage), looks
   again (another run may have just written it), runs, and writes the record
   before it enters Completed, so a Completed run's result is always durable.

A value the serializer cannot handle fails the run (not the flow engine) with
a message naming the task, the serializer and the fixes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.core.states import State, StateType
from headwater.exceptions import (
    ResultStorageError,
    SerializationError,
    UnhashableInputError,
)

if TYPE_CHECKING:
    from headwater.context import FlowRunContext
    from headwater.engine.machine import Machine
    from headwater.engine.results import ResultOptions
    from headwater.engine.runs import FlowRun, TaskRun
    from headwater.flows import Flow
    from headwater.results import ResultStorage
    from headwater.serializers import Serializer
    from headwater.tasks import Task

logger = logging.getLogger(__name__)

#: keys used as file names as they are; anything else is hashed
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

#: the clock expirations are measured with (tests replace it)
now = time.time


class _KeyLocks:
    """One `threading.Lock` per (storage, key), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], list[Any]] = {}

    @contextlib.contextmanager
    def hold(self, name: tuple[str, str]) -> Any:
        with self._guard:
            entry = self._locks.get(name)
            if entry is None:
                entry = self._locks[name] = [threading.Lock(), 0]
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[name]


key_locks = _KeyLocks()


def _storage_key(key: str) -> str:
    if _SAFE_KEY.fullmatch(key):
        return key
    from headwater.cache_policies import hash_objects

    return hash_objects(key)


def _serializer(options: ResultOptions, flow_options: ResultOptions | None) -> Serializer:
    from headwater.serializers import get_serializer

    spec = options.serializer
    if spec is None and flow_options is not None:
        spec = flow_options.serializer
    if spec is None:
        from headwater.settings import get_settings

        spec = get_settings().results_default_serializer
    return get_serializer(spec)


_storages: dict[Any, ResultStorage] = {}


def _storage(options: ResultOptions, flow_options: ResultOptions | None) -> ResultStorage:
    """The storage object for a spec, made once per spec (and default directory)."""
    spec = options.storage
    if spec is None and flow_options is not None:
        spec = flow_options.storage
    if spec is None:
        from headwater.results import _default_storage_path

        spec = _default_storage_path()
    if not isinstance(spec, (str, Path)):
        from headwater.results import get_storage

        return get_storage(spec)  # a ResultStorage (or a wrong value, refused there)
    storage = _storages.get(spec)
    if storage is None:
        from headwater.results import get_storage

        storage = _storages[spec] = get_storage(spec)
    return storage


def _flow_options(flow_context: FlowRunContext | None) -> ResultOptions | None:
    if flow_context is None:
        return None
    options: ResultOptions | None = getattr(flow_context.flow, "result_options", None)
    return options


def render_storage_key(
    template: str, parameters: dict[str, Any], task_run: TaskRun, flow_run: FlowRun | None
) -> str:
    """`result_storage_key` rendered over the parameters and the runs.

    Both `{day}` and Prefect's `{parameters[day]}` work, as do `{task_run.name}`
    and `{flow_run.id}`.
    """
    from headwater.results import check_key

    values = {**parameters, "parameters": parameters, "task_run": task_run, "flow_run": flow_run}
    try:
        return check_key(template.format(**values))
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ResultStorageError(
            f"result_storage_key {template!r} cannot be rendered: {exc!r}; use the task's "
            f"parameter names {sorted(parameters)}, task_run or flow_run."
        ) from None


class CacheStep:
    """The cache and persistence work of one task run."""

    __slots__ = (
        "_locks",
        "flow_context",
        "key",
        "lookup_key",
        "options",
        "run",
        "serializer",
        "storage",
        "task",
    )

    def __init__(
        self,
        task: Task[Any, Any],
        run: TaskRun,
        options: ResultOptions,
        flow_context: FlowRunContext | None,
    ) -> None:
        self.task = task
        self.run = run
        self.options = options
        self.flow_context = flow_context
        flow_options = _flow_options(flow_context)
        self.serializer = _serializer(options, flow_options)
        self.storage = _storage(options, flow_options)
        #: where the record is written
        self.key = run.hex_id
        #: the key looked up, None when this run is not cached
        self.lookup_key: str | None = None
        self._locks: contextlib.ExitStack | None = None

    # -- lookup ---------------------------------------------------------------------
    def lookup(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> State | None:
        """A Cached state when a record exists for this run's key, else None.

        On a miss the key's lock is held until `release()`.
        """
        from headwater.cache_policies import NO_CACHE

        options = self.options
        inputs = self._inputs(args, kwargs)
        flow_run = self.flow_context.flow_run if self.flow_context is not None else None
        if options.storage_key is not None:
            self.key = render_storage_key(options.storage_key, inputs, self.run, flow_run)
            if options.policy is not NO_CACHE:
                self.lookup_key = self.key
        elif options.policy is not None:
            from headwater.context import task_run_context

            try:
                key = options.policy.compute_key(
                    task_run_context.get(),
                    inputs,
                    flow_run.parameters if flow_run is not None else None,
                )
            except UnhashableInputError as exc:
                self._warn(f"{exc} This run is not cached.")
                key = None
            if key is not None:
                self.key = self.lookup_key = _storage_key(key)
        if self.lookup_key is None:
            return None
        if not options.refresh:
            hit = self._read()
            if hit is not None:
                return hit
        self._locks = contextlib.ExitStack()
        self._locks.enter_context(key_locks.hold((self.storage.identity, self.key)))
        self._locks.enter_context(self.storage.lock(self.key))
        if not options.refresh:
            hit = self._read()
            if hit is not None:
                self.release()
                return hit
        return None

    def _inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.task.signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _read(self) -> State | None:
        from headwater.results import decode_metadata, load_value

        try:
            data = self.storage.read(self.key)
            if data is None:
                return None
            metadata, payload = decode_metadata(data)
            if metadata.expired(now()):
                return None
            value = load_value(metadata, payload, self.serializer)
        except Exception as exc:
            self._warn(
                f"The cached result {self.key!r} of task {self.task.name!r} cannot be read "
                f"({type(exc).__name__}: {exc}); the task runs again."
            )
            return None
        return State(StateType.COMPLETED, "Cached", data=value)

    def release(self) -> None:
        if self._locks is not None:
            locks, self._locks = self._locks, None
            locks.close()

    # -- persisting ---------------------------------------------------------------------
    def succeeded(self, machine: Machine, value: Any) -> float | None:
        """Persist `value`, then record the successful attempt (or Failed if it can't be)."""
        if isinstance(value, State):
            return machine.succeeded(value)
        try:
            data = self.encode(value)
            from headwater.transactions import get_transaction

            transaction = get_transaction()
            if transaction is not None:
                transaction.stage(self.storage, self.key, data)
            else:
                self.storage.write(self.key, data)
        except (SerializationError, ResultStorageError) as exc:
            # Retrying would compute the same value again: the run fails now.
            machine._enter(State(StateType.FAILED, message=str(exc), data=exc))
            return None
        return machine.succeeded(value)

    def encode(self, value: Any) -> bytes:
        from headwater.results import ResultMetadata, encode_record

        serializer = self.serializer
        try:
            payload = serializer.dumps(value)
        except Exception as exc:
            raise SerializationError(
                f"Task {self.task.name!r} returned a {type(value).__name__} that the "
                f"{serializer.type!r} result serializer cannot serialize ({type(exc).__name__}: "
                f"{exc}). Return a serializable value, choose another result_serializer "
                "('cloudpickle', 'json'), or do not persist this task's result "
                "(persist_result=False, or cache_policy=NO_CACHE)."
            ) from exc
        created = now()
        expiration = self.options.expiration
        metadata = ResultMetadata(
            storage_key=self.key,
            serializer=serializer.type,
            created=created,
            expiration=None if expiration is None else created + expiration.total_seconds(),
        )
        return encode_record(metadata, payload)

    def _warn(self, message: str) -> None:
        from headwater.logging.run_logger import task_run_logger

        task_run_logger(self.run).warning("%s", message)


def flow_succeeded(flow: Flow[Any, Any], machine: Machine, value: Any) -> float | None:
    """Write a flow run's return value under `flow-run-<id>`, then record the success.

    A value that cannot be written fails the flow run with the reason.
    """
    options = flow.result_options
    if options is None or isinstance(value, State):
        return machine.succeeded(value)
    from headwater.results import ResultMetadata, encode_record

    run: FlowRun = machine.run
    serializer = _serializer(options, None)
    key = f"flow-run-{run.hex_id}"
    try:
        try:
            payload = serializer.dumps(value)
        except Exception as exc:
            raise SerializationError(
                f"Flow {flow.name!r} returned a {type(value).__name__} that the "
                f"{serializer.type!r} result serializer cannot serialize ({type(exc).__name__}: "
                f"{exc}). Return a serializable value, choose another result_serializer, or "
                "set persist_result=False on the flow."
            ) from exc
        metadata = ResultMetadata(storage_key=key, serializer=serializer.type, created=now())
        _storage(options, None).write(key, encode_record(metadata, payload))
    except (SerializationError, ResultStorageError) as exc:
        machine._enter(State(StateType.FAILED, message=str(exc), data=exc))
        return None
    return machine.succeeded(value)


def start(
    task: Task[Any, Any],
    run: TaskRun,
    options: ResultOptions,
    flow_context: FlowRunContext | None,
    machine: Machine,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> CacheStep | None:
    """The run's cache step, or None when the run has ended already: a hit, or a bad key."""
    try:
        step = CacheStep(task, run, options, flow_context)
        hit = step.lookup(args, kwargs)
    except (ResultStorageError, SerializationError) as exc:
        machine._enter(State(StateType.FAILED, message=str(exc), data=exc))
        return None
    if hit is not None:
        machine.succeeded(hit)
        return None
    return step
