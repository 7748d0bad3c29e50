"""Deployments: `run_deployment`, and deployments built in code (`RunnerDeployment`).

from headwater.deployments import run_deployment
run = run_deployment("nightly/nightly", parameters={"day": "2026-11-20"})
print(run.state)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.deployments.run import DeploymentFlowRun, run_deployment
    from headwater.deployments.runner import RunnerDeployment, aserve, deploy, serve

__all__ = ["DeploymentFlowRun", "RunnerDeployment", "aserve", "deploy", "run_deployment", "serve"]

_LAZY = {
    "DeploymentFlowRun": "headwater.deployments.run",
    "run_deployment": "headwater.deployments.run",
    "RunnerDeployment": "headwater.deployments.runner",
    "aserve": "headwater.deployments.runner",
    "deploy": "headwater.deployments.runner",
    "serve": "headwater.deployments.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headwater.deployments' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
