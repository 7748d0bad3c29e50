"""Headwater: Python-native workflow orchestration.

    from headwater import flow, task

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def pipeline() -> int:
        return add(1, 2)

Importing this package is cheap: no database driver, web framework or
pydantic is loaded until a run needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from headwater._version import __version__
from headwater.annotations import allow_failure, quote, unmapped
from headwater.context import tags
from headwater.core.states import State
from headwater.flows import Flow, flow
from headwater.tasks import Task, task

if TYPE_CHECKING:
    from headwater import runtime
    from headwater.deployments.run import run_deployment
    from headwater.deployments.runner import aserve, deploy, serve
    from headwater.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run
    from headwater.logging import get_run_logger
    from headwater.transactions import Transaction

__all__ = [
    "Flow",
    "State",
    "Task",
    "Transaction",
    "__version__",
    "allow_failure",
    "aserve",
    "deploy",
    "flow",
    "get_run_logger",
    "pause_flow_run",
    "quote",
    "resume_flow_run",
    "run_deployment",
    "runtime",
    "serve",
    "suspend_flow_run",
    "tags",
    "task",
    "unmapped",
]

_LAZY = {
    "get_run_logger": ("headwater.logging", "get_run_logger"),
    "runtime": ("headwater.runtime", None),
    "serve": ("headwater.deployments.runner", "serve"),
    "aserve": ("headwater.deployments.runner", "aserve"),
    "deploy": ("headwater.deployments.runner", "deploy"),
    "run_deployment": ("headwater.deployments.run", "run_deployment"),
    "pause_flow_run": ("headwater.flow_runs", "pause_flow_run"),
    "suspend_flow_run": ("headwater.flow_runs", "suspend_flow_run"),
    "resume_flow_run": ("headwater.flow_runs", "resume_flow_run"),
    "Transaction": ("headwater.transactions", "Transaction"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'headwater' has no attribute {name!r}")
