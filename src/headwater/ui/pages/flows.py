"""UI pages: the flows, and one flow with its deployments and recent runs."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api
from headwater.ui.render import page

router = APIRouter()

#: Flows on one page of the list.
PAGE_SIZE = 50
#: Runs shown on a flow's page (the flow-run list has them all).
RECENT_RUNS = 20


@router.get("/flows", response_class=HTMLResponse)
async def flows_page(
    request: Request,
    name: Annotated[str | None, Query(max_length=255)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    api = Api(request)
    listing = await api.get("/flows", name_like=name, offset=offset, limit=PAGE_SIZE)
    # Two cheap reads per flow, side by side: its deployments (a count) and its latest run
    # (the run total comes with it; flow_run has an index on (flow_id, created)).
    summaries = await asyncio.gather(*(_summary(api, flow) for flow in listing["items"]))
    return page(
        request,
        "flows/list.html",
        flows=summaries,
        total=listing["total"],
        offset=offset,
        limit=PAGE_SIZE,
        name=name or "",
    )


async def _summary(api: Api, flow: dict[str, Any]) -> dict[str, Any]:
    deployments, runs = await asyncio.gather(
        api.get("/deployments", flow_name=flow["name"], limit=1),
        api.get("/flow_runs", flow_id=flow["id"], sort="CREATED_DESC", limit=1),
    )
    return {
        **flow,
        "deployment_count": deployments["total"],
        "run_count": runs["total"],
        "last_run": runs["items"][0] if runs["items"] else None,
    }


@router.get("/flows/{flow_id}", response_class=HTMLResponse)
async def flow_page(request: Request, flow_id: str) -> HTMLResponse:
    api = Api(request)
    flow = await api.get(f"/flows/{urllib.parse.quote(flow_id, safe='')}")
    deployments, runs, counts = await asyncio.gather(
        api.get("/deployments", flow_name=flow["name"], limit=200),
        api.get("/flow_runs", flow_id=flow["id"], limit=RECENT_RUNS),
        api.get("/flow_runs/counts", flow_id=flow["id"]),
    )
    return page(
        request,
        "flows/detail.html",
        flow=flow,
        deployments=deployments,
        deployment_names={item["id"]: item["name"] for item in deployments["items"]},
        runs=runs,
        counts=counts,
    )
