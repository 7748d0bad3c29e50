"""The current flow run: `id`, `name`, `flow_name`, `parameters`, `tags`, `run_count`, ..."""

from __future__ import annotations

from typing import Any

_ATTRIBUTES = (
    "flow_name",
    "id",
    "name",
    "parameters",
    "parent_flow_run_id",
    "parent_task_run_id",
    "root_flow_run_id",
    "run_count",
    "scheduled_start_time",
    "tags",
)

_DEFAULTS: dict[str, Any] = {"parameters": {}, "tags": [], "run_count": 0}


def _current() -> Any:
    from headwater.context import flow_run_context, task_run_context

    context = flow_run_context.get()
    if context is not None:
        return context.flow_run
    task_context = task_run_context.get()
    return task_context.flow_run if task_context is not None else None


def __getattr__(name: str) -> Any:
    if name not in _ATTRIBUTES:
        raise AttributeError(f"headwater.runtime.flow_run has no attribute {name!r}")
    run = _current()
    if run is None:
        default = _DEFAULTS.get(name)
        return default.copy() if isinstance(default, (dict, list)) else default
    value = getattr(run, name)
    if name in ("id", "parent_flow_run_id", "parent_task_run_id", "root_flow_run_id"):
        return None if value is None else str(value)
    if name == "scheduled_start_time":
        from headwater.core.clock import to_datetime

        return to_datetime(value)
    if name == "parameters":
        return dict(value)
    if name == "tags":
        return list(value)
    return value


def __dir__() -> list[str]:
    return sorted(_ATTRIBUTES)
