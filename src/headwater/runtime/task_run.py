"""The current task run: `id`, `name`, `task_name`, `parameters`, `tags`, `run_count`."""

from __future__ import annotations

from typing import Any

_ATTRIBUTES = ("id", "name", "parameters", "run_count", "tags", "task_name")

_DEFAULTS: dict[str, Any] = {"parameters": {}, "tags": [], "run_count": 0}


def __getattr__(name: str) -> Any:
    if name not in _ATTRIBUTES:
        raise AttributeError(f"headwater.runtime.task_run has no attribute {name!r}")
    from headwater.context import task_run_context

    context = task_run_context.get()
    if context is None:
        default = _DEFAULTS.get(name)
        return default.copy() if isinstance(default, (dict, list)) else default
    value = getattr(context.task_run, name)
    if name == "id":
        return str(value)
    if name in ("parameters", "tags"):
        return type(value)(value)
    return value


def __dir__() -> list[str]:
    return sorted(_ATTRIBUTES)
