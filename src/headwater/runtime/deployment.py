"""The current run's deployment: `id`, `name`, `version`, `parameters`.

Runs started by calling a flow directly have no deployment: every attribute
is None (parameters `{}`). Deployments arrive with the scheduling features.
"""

from __future__ import annotations

from typing import Any

_ATTRIBUTES = ("id", "name", "parameters", "version")


def __getattr__(name: str) -> Any:
    if name not in _ATTRIBUTES:
        raise AttributeError(f"headwater.runtime.deployment has no attribute {name!r}")
    return {} if name == "parameters" else None


def __dir__() -> list[str]:
    return sorted(_ATTRIBUTES)
