"""The dashboard (`/`): runs over time by state, what needs attention, pools and workers.

Every figure comes from the REST API: the chart from `GET /api/flow_runs/history`,
the counts from `GET /api/flow_runs/counts`, failures and late runs from the listing,
pools from `GET /api/work_pools` and their workers. The page refreshes its regions
when a run changes state (`GET /api/stream`); workers every few seconds.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from headwater.ui import charts
from headwater.ui.api import Api, deployment_names, nothing
from headwater.ui.render import page

router = APIRouter()

#: Failed and late runs listed under "Needs attention".
ATTENTION = 8
#: Runs that are under way (counted whatever the window).
ACTIVE_TYPES = ["RUNNING", "PENDING", "PAUSED", "CANCELLING"]
#: Regions the page refreshes; a refresh request names some of them.
REGIONS = ("dash-stats", "dash-chart", "dash-attention", "dash-workers")


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, window: str = charts.DEFAULT_WINDOW) -> HTMLResponse:
    api = Api(request)
    span = charts.time_window(window, now=time.time())
    wanted = _regions(request)
    since, until = _iso(span.since), _iso(span.until)
    runs = bool({"dash-stats", "dash-chart", "dash-attention"} & wanted)
    history, active, late, failures, pools = await asyncio.gather(
        api.get("/flow_runs/history", since=since, until=until, buckets=span.buckets)
        if runs
        else nothing(),
        api.get("/flow_runs/counts", state_type=ACTIVE_TYPES) if runs else nothing(),
        _late_runs(api) if runs else nothing(),
        api.get("/flow_runs", state_type=["FAILED", "CRASHED"], since=since, limit=ATTENTION)
        if runs
        else nothing(),
        _pools(api) if "dash-workers" in wanted else nothing(),
    )
    buckets = [charts.Bucket.of(b) for b in history["buckets"]] if history else []
    totals = charts.state_totals(buckets)
    deployments = await deployment_names(
        api, [*(failures or {}).get("items", []), *(late or {}).get("items", [])]
    )
    return page(
        request,
        "dashboard/index.html",
        window=span,
        windows=list(charts.WINDOWS),
        chart=charts.stacked_bars(buckets, link=_segment_link) if history else None,
        totals=totals,
        window_total=sum(totals.values()),
        active=(active or {}).get("counts", {}),
        late=late,
        failures=failures,
        deployments=deployments,
        pools=pools,
        since=since,
        runs_link=_runs_link,
    )


def _regions(request: Request) -> set[str]:
    """The regions to render: those a live refresh names, else all of them."""
    asked = request.headers.get("x-headwater-refresh")
    if not asked:
        return set(REGIONS)
    return {name.strip() for name in asked.split(",")} & set(REGIONS)


async def _late_runs(api: Api) -> dict[str, Any]:
    """Scheduled runs the server marked Late (not claimed after their start time)."""
    counted = await api.get("/flow_runs/counts", state_type=["SCHEDULED"], state_name=["Late"])
    if not counted["total"]:
        return {"items": [], "total": 0}
    found: dict[str, Any] = await api.get(
        "/flow_runs",
        state_type=["SCHEDULED"],
        state_name=["Late"],
        sort="RUN_TIME_ASC",
        limit=ATTENTION,
    )
    return {"items": found["items"], "total": counted["total"]}


async def _pools(api: Api) -> list[dict[str, Any]]:
    """Work pools with their workers (online ones first, as the API orders them)."""
    found = await api.get("/work_pools", limit=100)
    pools: list[dict[str, Any]] = found["items"]
    workers = await asyncio.gather(
        *(api.get(f"/work_pools/{urllib.parse.quote(p['name'], safe='')}/workers") for p in pools)
    )
    return [
        {
            **pool,
            "workers": members,
            "online": sum(1 for w in members if w["status"] == "ONLINE"),
        }
        for pool, members in zip(pools, workers, strict=True)
    ]


def _iso(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def _runs_link(**params: Any) -> str:
    """/flow-runs with these filters (lists become repeated parameters)."""
    query = urllib.parse.urlencode(
        {k: v for k, v in params.items() if v not in (None, "", [])}, doseq=True
    )
    return "/flow-runs" + ("?" + query if query else "")


def _segment_link(bucket: charts.Bucket, state: str) -> str:
    return _runs_link(since=_iso(bucket.start), until=_iso(bucket.end), state_type=state)
