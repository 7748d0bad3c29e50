"""Cache policies: how a task run's cache key is made.

A task with a cache policy persists its result under the key the policy
computes; a later run with the same key returns that result instead of
running (its final state is Completed, named "Cached").

    from datetime import timedelta
    from headwater import task
    from headwater.cache_policies import INPUTS, TASK_SOURCE

    @task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(days=1))
    def fetch(url: str) -> bytes: ...

Policies compose with `+` (every part must match) and `INPUTS - "name"`
leaves a parameter out. `DEFAULT` is `INPUTS + TASK_SOURCE + RUN_ID`: the
same code with the same inputs in the same flow run, which is what lets a
retried flow run skip the tasks it already completed. Write your own by
subclassing `CachePolicy` and implementing `compute_key`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from collections.abc import Callable
from typing import Any

from headwater.exceptions import UnhashableInputError

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "RunId",
    "TaskSource",
    "hash_objects",
]


class CachePolicy:
    """Makes a cache key for a task run, or None for "do not cache this run"."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """The key for a run. `task_ctx` is the `TaskRunContext` (`.task`, `.task_run`)."""
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(other, _NoCache):
            return self
        mine = self.policies if isinstance(self, CompoundCachePolicy) else (self,)
        theirs = other.policies if isinstance(other, CompoundCachePolicy) else (other,)
        return CompoundCachePolicy(tuple(mine) + tuple(p for p in theirs if p not in mine))

    def __sub__(self, parameter: str) -> CachePolicy:
        """This policy without the input `parameter` (only input policies use inputs)."""
        if not isinstance(parameter, str):
            return NotImplemented
        return self


@dataclasses.dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    """Several policies at once: the key changes when any part's key changes."""

    policies: tuple[CachePolicy, ...] = ()

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        keys = [
            key
            for policy in self.policies
            if (key := policy.compute_key(task_ctx, inputs, flow_parameters, **kwargs)) is not None
        ]
        if not keys:
            return None
        return keys[0] if len(keys) == 1 else hash_objects(*keys)

    def __sub__(self, parameter: str) -> CachePolicy:
        return CompoundCachePolicy(tuple(policy - parameter for policy in self.policies))


@dataclasses.dataclass(frozen=True)
class _NoCache(CachePolicy):
    """Never cache (results are still persisted when `persist_result=True`)."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return other

    def __repr__(self) -> str:
        return "NO_CACHE"


@dataclasses.dataclass(frozen=True)
class Inputs(CachePolicy):
    """The task's arguments (after futures are resolved), except those in `exclude`."""

    exclude: tuple[str, ...] = ()

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        digest = hashlib.blake2b(digest_size=16)
        for name in sorted(inputs):
            if name in self.exclude:
                continue
            _feed_str(digest, name)
            try:
                _feed(digest, inputs[name])
            except UnhashableInputError as exc:
                task_name = getattr(getattr(task_ctx, "task", None), "name", "?")
                raise UnhashableInputError(
                    f"Task {task_name!r}: the cache policy cannot hash parameter {name!r} "
                    f"({exc}). Leave it out of the key (cache_policy=INPUTS - {name!r}), pass a "
                    "cache_key_fn, or use cache_policy=NO_CACHE."
                ) from None
        return digest.hexdigest()

    def __sub__(self, parameter: str) -> CachePolicy:
        if not isinstance(parameter, str):
            return NotImplemented
        return Inputs((*self.exclude, parameter))

    def __repr__(self) -> str:
        return "INPUTS" if not self.exclude else f"Inputs(exclude={list(self.exclude)})"


_source_hashes: dict[Any, str] = {}


@dataclasses.dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The task function's source code: editing the function invalidates the cache."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        task = getattr(task_ctx, "task", None)
        if task is None:
            return None
        return source_hash(task.fn)

    def __repr__(self) -> str:
        return "TASK_SOURCE"


def source_hash(fn: Callable[..., Any]) -> str:
    """A hash of a function's source (its bytecode when the source is not available)."""
    known = _source_hashes.get(fn)
    if known is not None:
        return known
    import inspect

    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = (
            code.co_code + repr(code.co_consts).encode() if code is not None else repr(fn).encode()
        )
    known = hashlib.blake2b(text, digest_size=16).hexdigest()
    _source_hashes[fn] = known
    return known


@dataclasses.dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """The parameters of the flow run the task runs in."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        if not flow_parameters:
            return None
        return Inputs().compute_key(task_ctx, flow_parameters, None)

    def __repr__(self) -> str:
        return "FLOW_PARAMETERS"


@dataclasses.dataclass(frozen=True)
class RunId(CachePolicy):
    """The flow run's id (the task run's own id outside a flow): no sharing across runs."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        task_run = getattr(task_ctx, "task_run", None)
        if task_run is None:
            return None
        return str(task_run.flow_run_hex or task_run.hex_id)

    def __repr__(self) -> str:
        return "RUN_ID"


@dataclasses.dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """A `cache_key_fn(context, parameters) -> str | None` as a policy."""

    cache_key_fn: Callable[[Any, dict[str, Any]], str | None]

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        key = self.cache_key_fn(task_ctx, inputs)
        return None if key is None else str(key)


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = _NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID


# -- hashing -----------------------------------------------------------------------------
def hash_objects(*values: Any) -> str:
    """A stable hex digest of values: the same across processes and runs.

    Raises `UnhashableInputError` for values that are neither plain data nor picklable.
    """
    digest = hashlib.blake2b(digest_size=16)
    for value in values:
        _feed(digest, value)
    return digest.hexdigest()


def _feed_str(digest: Any, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    digest.update(b"s%d:" % len(data))
    digest.update(data)


def _sub_digest(value: Any) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    _feed(digest, value)
    return digest.digest()


def _feed(digest: Any, value: Any) -> None:
    """Feed a canonical encoding of `value`: dicts and sets do not depend on order."""
    kind = type(value)
    if value is None:
        digest.update(b"N")
    elif kind is bool:
        digest.update(b"T" if value else b"F")
    elif kind is int:
        digest.update(b"i%d;" % value)
    elif kind is float:
        digest.update(b"f" + repr(value).encode() + b";")
    elif kind is str:
        _feed_str(digest, value)
    elif kind is bytes:
        digest.update(b"b%d:" % len(value))
        digest.update(value)
    elif kind is list or kind is tuple:
        digest.update(b"l%d[" % len(value) if kind is list else b"t%d[" % len(value))
        for item in value:
            _feed(digest, item)
    elif kind is dict:
        digest.update(b"d%d{" % len(value))
        for pair in sorted(_sub_digest(k) + _sub_digest(v) for k, v in value.items()):
            digest.update(pair)
    elif kind is set or kind is frozenset:
        digest.update(b"S%d{" % len(value))
        for item in sorted(_sub_digest(v) for v in value):
            digest.update(item)
    else:
        _feed_object(digest, value)


def _feed_object(digest: Any, value: Any) -> None:
    kind = type(value)
    _feed_str(digest, f"{kind.__module__}.{kind.__qualname__}")
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        _feed(digest, model_dump())
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _feed(digest, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        return
    import enum

    if isinstance(value, enum.Enum):
        _feed(digest, value.name)
        return
    try:
        data = pickle.dumps(value, protocol=4)
    except Exception as exc:
        raise UnhashableInputError(
            f"a {kind.__name__} value is neither plain data nor picklable: {exc}"
        ) from None
    digest.update(b"p%d:" % len(data))
    digest.update(data)
