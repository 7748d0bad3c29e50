"""UI pages: the work pools, and one pool with its queues, workers and deployments.

Statuses are the server's: a pool is PAUSED, READY (a worker is online) or NOT_READY; a
worker is ONLINE until it misses its heartbeats (`server/repositories/work_pools.py`).
The API cannot list runs by pool, so a pool's page lists its deployments instead.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api
from headwater.ui.render import page

router = APIRouter()

#: Pools on one page of the list.
PAGE_SIZE = 50
#: Deployments listed on a pool's page.
POOL_DEPLOYMENTS = 50


def _path(pool: str) -> str:
    """The API path of a pool: its name is one path segment, quoted."""
    return f"/work_pools/{urllib.parse.quote(pool, safe='')}"


@router.get("/work-pools", response_class=HTMLResponse)
async def work_pools_page(
    request: Request, offset: Annotated[int, Query(ge=0)] = 0
) -> HTMLResponse:
    api = Api(request)
    listing = await api.get("/work_pools", offset=offset, limit=PAGE_SIZE)
    workers = await asyncio.gather(
        *(api.get(f"{_path(pool['name'])}/workers") for pool in listing["items"])
    )
    pools = [
        {
            **pool,
            "workers_online": sum(1 for w in pool_workers if w["status"] == "ONLINE"),
            "workers_total": len(pool_workers),
        }
        for pool, pool_workers in zip(listing["items"], workers, strict=True)
    ]
    return page(
        request,
        "work_pools/list.html",
        pools=pools,
        total=listing["total"],
        offset=offset,
        limit=PAGE_SIZE,
    )


@router.get("/work-pools/{name}", response_class=HTMLResponse)
async def work_pool_page(request: Request, name: str) -> HTMLResponse:
    api = Api(request)
    pool = await api.get(_path(name))
    queues, workers, deployments = await asyncio.gather(
        api.get(f"{_path(name)}/queues"),
        api.get(f"{_path(name)}/workers"),
        api.get("/deployments", work_pool_name=pool["name"], limit=POOL_DEPLOYMENTS),
    )
    return page(
        request,
        "work_pools/detail.html",
        pool=pool,
        api_path="/api" + _path(pool["name"]),
        queues=[{**queue, "api_path": _queue_path(pool["name"], queue)} for queue in queues],
        workers=workers,
        workers_online=sum(1 for w in workers if w["status"] == "ONLINE"),
        deployments=deployments,
    )


def _queue_path(pool: str, queue: dict[str, Any]) -> str:
    return f"/api{_path(pool)}/queues/{urllib.parse.quote(queue['name'], safe='')}"
