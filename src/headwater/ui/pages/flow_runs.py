"""The flow-run list (`/flow-runs`): filters in the query string, pages, live updates.

Filters (all optional, combined): `flow_name`, `deployment_id`, `state_type`
(repeatable), `tag` (repeatable: runs with every tag), `state_name`, `since`, `until`
(ISO 8601; a time without zone is UTC), then `offset` and `limit`. They go to
`GET /api/flow_runs` as they are, so a URL of this page is the same query as the
CLI's. Counts per state come from `GET /api/flow_runs/counts` with the same filters
but the states, so that each state's checkbox says how many runs it would add.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api, ApiError, deployment_names, nothing
from headwater.ui.render import STATE_TYPES, page, parse_time

router = APIRouter()

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: Flows and deployments offered in the filter menus; past that, flow is a text field.
MENU_SIZE = 200
#: Regions a live refresh re-renders.
LIVE_REGIONS = ("runs-table", "state-counts")


@router.get("/flow-runs", response_class=HTMLResponse)
async def flow_runs(request: Request) -> HTMLResponse:
    api = Api(request)
    filters = _filters(request)
    offset = _number(request.query_params.get("offset"), default=0, low=0, high=2**31 - 1)
    limit = _number(request.query_params.get("limit"), default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    menus = not request.headers.get("x-headwater-refresh")
    without_states = {k: v for k, v in filters.items() if k != "state_type"}
    error = _invalid(filters)
    try:
        if error:
            raise ApiError(422, error)
        found, counts, flows, deployments = await asyncio.gather(
            api.get("/flow_runs", **filters, offset=offset, limit=limit),
            api.get("/flow_runs/counts", **without_states),
            api.get("/flows", limit=MENU_SIZE) if menus else nothing(),
            api.get("/deployments", limit=MENU_SIZE) if menus else nothing(),
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        # A hand-edited or stale URL: show the form with the API's message.
        error = exc.message
        found, counts, flows, deployments = {"items": [], "total": 0}, {"counts": {}}, None, None
    runs: list[dict[str, Any]] = found["items"]
    names = await deployment_names(api, runs, (deployments or {}).get("items", []))
    selected = filters.get("deployment_id")
    if selected and selected not in names and error is None:
        names.update(await deployment_names(api, [{"deployment_id": selected}], []))
    return page(
        request,
        "flow_runs/list.html",
        runs=[_row(run, names) for run in runs],
        total=found["total"],
        offset=offset,
        limit=limit,
        filters=filters,
        counts=counts["counts"],
        flows=_flow_menu(flows, filters.get("flow_name")),
        deployments=_deployment_menu(deployments, names, selected),
        error=error,
        filtered=any(filters.values()),
        since_input=_time_input(filters["since"]),
        until_input=_time_input(filters["until"]),
    )


def _filters(request: Request) -> dict[str, Any]:
    """The list's filters from the query string; empty fields (a form sends them) dropped."""
    params = request.query_params

    def one(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    def many(name: str) -> list[str]:
        return [v.strip() for v in params.getlist(name) if v.strip()]

    return {
        "flow_name": one("flow_name"),
        "deployment_id": one("deployment_id"),
        "state_type": [s.upper() for s in many("state_type")],
        "state_name": many("state_name"),
        "tag": many("tag"),
        "since": one("since"),
        "until": one("until"),
    }


def _invalid(filters: dict[str, Any]) -> str | None:
    """What is wrong with the filters, in the terms of the query string (None: nothing)."""
    for state_type in filters["state_type"]:
        if state_type not in STATE_TYPES:
            return f"state_type {state_type!r} is not a state type ({', '.join(STATE_TYPES)})."
    for name in ("since", "until"):
        try:
            parse_time(filters[name])
        except ValueError:
            return (
                f"{name} {filters[name]!r} is not a time: use ISO 8601, e.g. 2026-01-31T08:00:00Z."
            )
    return None


def _number(text: str | None, *, default: int, low: int, high: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        return default
    return min(max(value, low), high)


def _time_input(text: str | None) -> str:
    """A filter time as a datetime-local field's value, in UTC (flow_runs.js shows it in
    the browser's time zone); "" if there is none or it is not a time."""
    try:
        moment = parse_time(text)
    except ValueError:
        return ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") if moment else ""


def _row(run: dict[str, Any], deployments: dict[str, str]) -> dict[str, Any]:
    """A run as the table shows it: its deployment's name, and how long it has run."""
    elapsed = run.get("duration")
    started = parse_time(run.get("start_time"))
    if elapsed is None and started is not None and run["state_type"] == "RUNNING":
        elapsed = max(0.0, (dt.datetime.now(dt.UTC) - started).total_seconds())
    deployment_id = run.get("deployment_id")
    return {
        **run,
        "deployment_name": deployments.get(str(deployment_id)) if deployment_id else None,
        "elapsed": elapsed,
        "running": run["state_type"] == "RUNNING",
    }


def _flow_menu(flows: dict[str, Any] | None, current: str | None) -> list[str] | None:
    """Flow names for a menu; None when there are too many (then a text field)."""
    if flows is None:
        return []
    if flows["total"] > len(flows["items"]):
        return None
    names = [str(f["name"]) for f in flows["items"]]
    if current and current not in names:
        names.append(current)
    return names


def _deployment_menu(
    deployments: dict[str, Any] | None, names: dict[str, str], current: str | None
) -> list[tuple[str, str]]:
    """(id, "flow / name") for the menu, the selected one included."""
    items = (deployments or {}).get("items", [])
    menu = [(str(d["id"]), f"{d['flow_name']} / {d['name']}") for d in items]
    if current and current not in {value for value, _ in menu}:
        menu.append((current, names.get(current, current)))
    return menu
