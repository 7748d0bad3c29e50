"""The REST API's routers, one module per resource; thin: validate, open a transaction, call
the repositories, answer."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.server.api import flow_runs, flows, health, logs, records, task_runs


def router() -> APIRouter:
    """Every API route, to mount under /api."""
    api = APIRouter()
    for module in (health, records, flows, flow_runs, task_runs, logs):
        api.include_router(module.router)
    return api
