"""The UI's pages, one router per area; each page reads through `headwater.ui.api.Api`."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from headwater.ui.pages import (
        artifacts,
        auth,
        automations,
        concurrency,
        dashboard,
        deployments,
        events,
        flow_run,
        flow_runs,
        flows,
        secrets,
        variables,
        work_pools,
    )

    modules = (
        auth,
        dashboard,
        flow_runs,
        flow_run,
        flows,
        deployments,
        work_pools,
        automations,
        events,
        artifacts,
        variables,
        secrets,
        concurrency,
    )
    return [module.router for module in modules]
