"""Task inputs: futures and states passed as arguments resolve to their results.

Resolution looks inside lists, tuples, sets and dicts (not other objects), and
costs one type check per plain argument when there is nothing to resolve.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Iterable
from typing import Any

from headwater.annotations import allow_failure, quote
from headwater.core.states import State, StateType
from headwater.engine.machine import UpstreamNotReady
from headwater.futures import HeadwaterFuture

_SCALARS = frozenset({int, float, str, bytes, bool, type(None), complex})
_SEQUENCES = (list, tuple, set, frozenset)
_SPECIAL = (HeadwaterFuture, State, allow_failure, quote)


def _needs_visit(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return False
    if isinstance(value, _SPECIAL):
        return True
    if kind in _SEQUENCES:
        return any(_needs_visit(item) for item in value)
    if kind is dict:
        return any(_needs_visit(item) for item in value.values())
    return False


def needs_resolution(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return any(_needs_visit(a) for a in args) or any(_needs_visit(v) for v in kwargs.values())


def upstream_futures(value: Any, found: list[HeadwaterFuture[Any]]) -> list[HeadwaterFuture[Any]]:
    """Collect the futures inside `value` (for dependency ordering and task_inputs)."""
    if isinstance(value, HeadwaterFuture):
        found.append(value)
    elif isinstance(value, allow_failure):
        upstream_futures(value.value, found)
    elif type(value) in _SEQUENCES:
        for item in value:
            upstream_futures(item, found)
    elif type(value) is dict:
        for item in value.values():
            upstream_futures(item, found)
    return found


def _state_value(state: State, allowed: bool, name: str) -> Any:
    if state.type is StateType.COMPLETED:
        return state.data
    if allowed:
        return state.result(raise_on_failure=False)
    raise UpstreamNotReady(
        f"Upstream {name} did not reach a Completed state (it is {state.name}); "
        "wrap it in allow_failure(...) to run anyway."
    )


def resolve(value: Any, allowed: bool = False) -> Any:
    """`value` with futures and states replaced by their results."""
    if isinstance(value, HeadwaterFuture):
        value.wait()
        return _state_value(value.state, allowed, f"task run {value._task_run.name!r}")
    if isinstance(value, State):
        return _state_value(value, allowed, "state")
    if isinstance(value, allow_failure):
        return resolve(value.value, allowed=True)
    if isinstance(value, quote):
        return value.value
    kind = type(value)
    if kind in _SEQUENCES:
        if not any(_needs_visit(v) for v in value):
            return value
        return kind(resolve(v, allowed) for v in value)
    if kind is dict:
        if not any(_needs_visit(v) for v in value.values()):
            return value
        return {k: resolve(v, allowed) for k, v in value.items()}
    return value


def resolve_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return tuple(resolve(a) for a in args), {k: resolve(v) for k, v in kwargs.items()}


def check_wait_for(wait_for: Iterable[Any]) -> None:
    """Wait for `wait_for` futures; raise UpstreamNotReady if one failed (unless allowed)."""
    for item in wait_for:
        resolve(item)


def task_inputs(
    args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Iterable[Any] | None
) -> dict[str, list[str]] | None:
    """Upstream task run ids by argument position/name, for the dependency graph."""
    inputs: dict[str, list[str]] = {}
    for index, value in enumerate(args):
        found = upstream_futures(value, [])
        if found:
            inputs[str(index)] = [str(f.task_run_id) for f in found]
    for key, value in kwargs.items():
        found = upstream_futures(value, [])
        if found:
            inputs[key] = [str(f.task_run_id) for f in found]
    if wait_for:
        found = upstream_futures(list(wait_for), [])
        if found:
            inputs["wait_for"] = [str(f.task_run_id) for f in found]
    return inputs or None


def underlying(futures: Iterable[HeadwaterFuture[Any]]) -> list[cf.Future[State]]:
    return [f._future for f in futures]
