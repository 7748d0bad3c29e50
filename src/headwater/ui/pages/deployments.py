"""UI pages: the deployments, and one deployment with its schedules, parameters and runs.

A deployment's page runs it ("Run now", a form generated from its parameter schema by
`static/jsonform.js`, see `static/deployments.js`), pauses and resumes its schedules, and
follows its runs live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headwater.core.schedules import describe, upcoming
from headwater.ui.api import Api
from headwater.ui.render import STATE_TYPES, page

router = APIRouter()

#: Deployments on one page of the list.
PAGE_SIZE = 50
#: Runs in a deployment's "recent" and "upcoming" tables.
RECENT_RUNS = 10
UPCOMING_RUNS = 10
#: Times shown for each schedule.
NEXT_TIMES = 3
#: Every state but Scheduled: the runs that started, or were meant to.
_NOT_SCHEDULED = [state_type for state_type in STATE_TYPES if state_type != "SCHEDULED"]


@router.get("/deployments", response_class=HTMLResponse)
async def deployments_page(
    request: Request,
    flow_name: Annotated[str | None, Query(max_length=255)] = None,
    work_pool_name: Annotated[str | None, Query(max_length=255)] = None,
    paused: Annotated[str | None, Query(pattern="^(true|false)?$")] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    listing = await Api(request).get(
        "/deployments",
        flow_name=flow_name,
        work_pool_name=work_pool_name,
        paused=paused,
        tag=tag,
        offset=offset,
        limit=PAGE_SIZE,
    )
    now = time.time()
    rows = [
        {
            **item,
            "schedule_texts": [describe_schedule(s) for s in item["schedules"]],
            "next_time": next_time(item, now),
        }
        for item in listing["items"]
    ]
    return page(
        request,
        "deployments/list.html",
        deployments=rows,
        total=listing["total"],
        offset=offset,
        limit=PAGE_SIZE,
        filters={
            "flow_name": flow_name or "",
            "work_pool_name": work_pool_name or "",
            "paused": paused or "",
            "tag": tag or [],
        },
    )


@router.get("/deployments/{deployment_id}", response_class=HTMLResponse)
async def deployment_page(request: Request, deployment_id: str) -> HTMLResponse:
    api = Api(request)
    deployment = await api.get(f"/deployments/{urllib.parse.quote(deployment_id, safe='')}")
    recent, upcoming = await asyncio.gather(
        api.get(
            "/flow_runs",
            deployment_id=deployment["id"],
            state_type=_NOT_SCHEDULED,
            limit=RECENT_RUNS,
        ),
        api.get(
            "/flow_runs",
            deployment_id=deployment["id"],
            state_type=["SCHEDULED"],
            sort="RUN_TIME_ASC",
            limit=UPCOMING_RUNS,
        ),
    )
    now = time.time()
    schedules = [
        {
            **schedule,
            "text": describe_schedule(schedule),
            "next_times": [] if deployment["paused"] else next_times(schedule, now, NEXT_TIMES),
        }
        for schedule in deployment["schedules"]
    ]
    return page(
        request,
        "deployments/detail.html",
        deployment=deployment,
        schedules=schedules,
        parameters=parameter_rows(deployment["parameter_schema"], deployment["parameters"]),
        recent=recent,
        upcoming=upcoming,
        # What the "Run now" form needs, handed to static/deployments.js as JSON.
        form_data={
            "id": deployment["id"],
            "schema": with_positions(deployment["parameter_schema"]),
            "parameters": deployment["parameters"],
        },
    )


# -- Schedules -----------------------------------------------------------------------------


def describe_schedule(schedule: dict[str, Any]) -> str:
    """One line, as the CLI prints it: "cron '0 2 * * *' (Europe/Paris)", "every 1h"."""
    return describe(schedule["schedule"])


def next_times(schedule: dict[str, Any], now: float, count: int) -> list[dt.datetime]:
    """The schedule's next `count` times after `now` (none while it is inactive); the
    scheduler reads the spec with the same code (`core.schedules`)."""
    return [dt.datetime.fromtimestamp(t, dt.UTC) for t in upcoming(schedule, now, count=count)]


def next_time(deployment: dict[str, Any], now: float) -> dt.datetime | None:
    """When the deployment's schedules next make a run, if it is not paused."""
    if deployment["paused"]:
        return None
    found = [t for s in deployment["schedules"] for t in next_times(s, now, 1)]
    return min(found, default=None)


# -- Parameters ----------------------------------------------------------------------------


def parameter_rows(schema: dict[str, Any], defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter: the schema's properties in order, then defaults it lacks."""
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    names = sorted(properties, key=lambda name: properties[name].get("position", 0))
    names += [name for name in defaults if name not in properties]
    rows = []
    for name in names:
        spec = _resolve(properties.get(name) or {}, schema)
        if name in defaults:
            value, given = defaults[name], True
        elif "default" in spec:
            value, given = spec["default"], True
        else:
            value, given = None, False
        rows.append(
            {
                "name": name,
                "type": _type_name(spec, schema) if name in properties else None,
                "required": name in required and not given,
                "value": value,
                "has_value": given,
                "description": spec.get("description"),
            }
        )
    return rows


def with_positions(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each property's `position` set (jsonform.js orders fields by it).

    The page hands the schema over as JSON with sorted keys (Jinja's `tojson`), which
    would otherwise put the fields in alphabetical order, not the signature's.
    """
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    ordered = {
        name: {"position": index, **spec} if isinstance(spec, dict) else spec
        for index, (name, spec) in enumerate(properties.items())
    }
    return {**schema, "properties": ordered}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow one local `$ref` ("#/definitions/X" or "#/$defs/X")."""
    ref = spec.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return spec
    target: Any = schema
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    return {**target, **spec} if isinstance(target, dict) else spec


def _type_name(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    if "enum" in spec:
        return " | ".join(repr(value) for value in spec["enum"][:6])
    for key in ("anyOf", "oneOf"):
        if isinstance(spec.get(key), list):
            return " | ".join(_type_name(_resolve(s, schema), schema) for s in spec[key])
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array" and isinstance(spec.get("items"), dict):
        return f"array of {_type_name(_resolve(spec['items'], schema), schema)}"
    if kind == "string" and spec.get("format"):
        return str(spec["format"])
    if kind is None and spec.get("title") and "$ref" in spec:
        return str(spec["title"])
    return str(kind or "any")
