"""The REST API's routers, one module per resource; thin: validate, open a transaction, call
the repositories, answer."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.server.api import (
    artifacts,
    automations,
    claims,
    concurrency_limits,
    deployments,
    events,
    flow_runs,
    flows,
    health,
    inputs,
    logs,
    records,
    secrets,
    task_runs,
    variables,
    webhooks,
    work_pools,
)


def router() -> APIRouter:
    """Every API route, to mount under /api."""
    api = APIRouter()
    modules = (
        health,
        records,
        flows,
        flow_runs,
        task_runs,
        logs,
        claims,
        deployments,
        work_pools,
        concurrency_limits,
        artifacts,
        variables,
        secrets,
        inputs,
        events,
        webhooks,
        automations,
    )
    for module in modules:
        api.include_router(module.router)
    return api
