"""The current run's deployment: `id`, `name`, `version`, `parameters`.

A run started by a worker or by `serve` knows its deployment (the process
executing it sets it with `set_current`); a flow called directly has none:
every attribute is None (parameters `{}`).
"""

from __future__ import annotations

import copy
from typing import Any

_ATTRIBUTES = ("id", "name", "parameters", "version", "flow_name")

_current: dict[str, Any] = {}


def set_current(deployment: dict[str, Any]) -> None:
    """Record the deployment of the run this process executes (`id`, `name`, ...)."""
    _current.clear()
    _current.update(deployment)


def __getattr__(name: str) -> Any:
    if name not in _ATTRIBUTES:
        raise AttributeError(f"headwater.runtime.deployment has no attribute {name!r}")
    if name == "parameters":
        return copy.deepcopy(_current.get("parameters") or {})
    return _current.get(name)


def __dir__() -> list[str]:
    return sorted(_ATTRIBUTES)
