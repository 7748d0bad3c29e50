"""Result options of tasks and flows, resolved once when the task or flow is defined.

Persistence is opt-in per task and flow, so a task without it pays one
attribute check per run. A task persists when it says `persist_result=True`,
sets a cache policy other than NO_CACHE, a `cache_key_fn`, a
`result_storage_key`, `result_storage` or `result_serializer` (as Prefect
does); when it leaves `persist_result` unset it inherits the persistence of
the flow it runs in, and the setting `results_persist_by_default`.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from headwater import settings as _settings_module

if TYPE_CHECKING:
    from headwater.cache_policies import CachePolicy
    from headwater.context import FlowRunContext
    from headwater.settings import Settings


@dataclasses.dataclass(frozen=True, slots=True)
class ResultOptions:
    """How one task's (or flow's) results are persisted and looked up."""

    #: None: look nothing up, persist under the run's id
    policy: CachePolicy | None = None
    storage: Any = None
    serializer: Any = None
    storage_key: str | None = None
    expiration: datetime.timedelta | None = None
    refresh: bool = False


def _check_expiration(value: Any) -> datetime.timedelta | None:
    if value is None or isinstance(value, datetime.timedelta):
        return value
    raise TypeError(
        f"cache_expiration must be a datetime.timedelta, got {value!r}; "
        "for example cache_expiration=timedelta(hours=1)."
    )


def task_result_options(
    persist_result: bool | None,
    cache_policy: Any,
    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None,
    cache_expiration: Any,
    refresh_cache: bool | None,
    result_storage: Any,
    result_serializer: Any,
    result_storage_key: str | None,
) -> tuple[bool | None, ResultOptions | None]:
    """(the effective persist_result, the options when it is True) for a task's options."""
    expiration = _check_expiration(cache_expiration)
    if cache_policy is not None or cache_key_fn is not None:
        from headwater.cache_policies import NO_CACHE, CacheKeyFnPolicy, CachePolicy

        if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
            raise TypeError(
                f"cache_policy must be a CachePolicy (INPUTS, TASK_SOURCE, ...), got "
                f"{cache_policy!r}; see headwater.cache_policies."
            )
        if cache_key_fn is not None:
            if not callable(cache_key_fn):
                raise TypeError(f"cache_key_fn must be callable, got {cache_key_fn!r}.")
            key_policy = CacheKeyFnPolicy(cache_key_fn)
            cache_policy = key_policy if cache_policy is None else cache_policy + key_policy
        if persist_result is None and cache_policy is not NO_CACHE:
            persist_result = True
    if persist_result is None and (
        result_storage_key is not None
        or result_storage is not None
        or result_serializer is not None
    ):
        persist_result = True
    if not persist_result:
        return persist_result, None
    if cache_policy is None:
        from headwater.cache_policies import DEFAULT

        cache_policy = DEFAULT
    if result_serializer is not None:
        from headwater.serializers import get_serializer

        result_serializer = get_serializer(result_serializer)
    return True, ResultOptions(
        policy=cache_policy,
        storage=result_storage,
        serializer=result_serializer,
        storage_key=result_storage_key,
        expiration=expiration,
        refresh=bool(refresh_cache),
    )


def flow_result_options(
    persist_result: bool | None, result_storage: Any, result_serializer: Any
) -> tuple[bool | None, ResultOptions | None]:
    """(the effective persist_result, the options when it is True) for a flow's options."""
    if persist_result is None and (result_storage is not None or result_serializer is not None):
        persist_result = True
    if not persist_result:
        return persist_result, None
    if result_serializer is not None:
        from headwater.serializers import get_serializer

        result_serializer = get_serializer(result_serializer)
    return True, ResultOptions(storage=result_storage, serializer=result_serializer)


_by_default: tuple[Settings | None, ResultOptions | None] = (None, None)


def inherited(flow_context: FlowRunContext | None) -> ResultOptions | None:
    """Options for a task that left `persist_result` unset: its flow's, or the setting's.

    On every run of such a task: kept to a few attribute reads.
    """
    flow = flow_context.flow if flow_context is not None else None
    if flow is not None:  # a process pool's child has a context without its flow
        flow_options = flow.result_options
        if flow_options is not None:
            return _for_tasks(flow_options)
        if flow.persist_result is False:
            return None
    settings = _settings_module._settings
    if settings is None or _by_default[0] is not settings:
        return _default_for(_settings_module.get_settings())
    return _by_default[1]


def _default_for(settings: Settings) -> ResultOptions | None:
    global _by_default
    options = None
    if settings.results_persist_by_default:
        from headwater.cache_policies import DEFAULT

        options = ResultOptions(policy=DEFAULT)
    _by_default = (settings, options)
    return options


_task_options: dict[int, tuple[ResultOptions, ResultOptions]] = {}


def _for_tasks(flow_options: ResultOptions) -> ResultOptions:
    """The flow's storage and serializer with the DEFAULT policy, made once per flow."""
    known = _task_options.get(id(flow_options))
    if known is not None and known[0] is flow_options:
        return known[1]
    from headwater.cache_policies import DEFAULT

    options = dataclasses.replace(flow_options, policy=DEFAULT)
    _task_options[id(flow_options)] = (flow_options, options)
    return options
