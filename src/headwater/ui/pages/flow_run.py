"""The flow run page (`/flow-runs/{id}`) and the task run page (`/task-runs/{id}`).

A flow run page shows the run's header and actions, its parameters, state history, a
Gantt timeline of its task runs and subflow runs, the dependency graph of its task runs,
its logs (followed live by `static/flow_run.js`), its artifacts and what went wrong.

`hw.js` refreshes regions of the page by fetching it again with the header
`x-headwater-refresh: id1,id2`; such a request skips reading what those regions do not
show (the logs, mostly).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from headwater.ui import graph as dependencies
from headwater.ui import timeline
from headwater.ui.api import Api, ApiError
from headwater.ui.render import page, parse_time

router = APIRouter()

T = TypeVar("T")

#: Log lines a page starts with (the latest ones); the stream adds what comes after.
LOG_LINES = 500
#: Task runs read for the timeline and the graph (one page of the API).
TASK_RUNS = 1000
SUBFLOW_RUNS = 200
ARTIFACTS = 50
#: Rows of the timeline and nodes of the graph drawn at most.
TIMELINE_ROWS = 100
GRAPH_NODES = 300
#: Regions of the flow run page that live updates refresh.
REGIONS = (
    "run-head",
    "run-summary",
    "run-states",
    "run-result",
    "run-timeline",
    "run-graph",
    "run-artifacts",
)
_PREFIX = re.compile(r"^[0-9a-fA-F-]{1,36}$")


@router.get("/flow-runs/{flow_run_id}", response_class=HTMLResponse)
async def flow_run_page(request: Request, flow_run_id: str) -> Response:
    api = Api(request)
    run = await _read_flow_run(api, flow_run_id)
    if run["id"] != flow_run_id:
        # A short id (like the CLI prints) or another spelling: one address per run.
        return RedirectResponse(f"/flow-runs/{run['id']}", status_code=307)
    now = dt.datetime.now(dt.UTC)
    parts = await _read_parts(api, run, _wanted(request))
    task_runs = parts["tasks"]["items"]
    return page(
        request,
        "flow_run/flow_run.html",
        run=run,
        final=run["state_type"] in timeline.FINAL_TYPES,
        running_for=_running_for(run, now),
        states=_with_durations(parts["states"], now),
        deployment=parts["deployment"],
        parent=parts["parent"],
        pause=parts["pause"],
        **_pictures(run, parts["states"], parts["tasks"], parts["subflows"], now),
        artifacts=parts["artifacts"]["items"],
        artifact_total=parts["artifacts"]["total"],
        failures=_failures(run, task_runs, parts["errors"]),
        logs=parts["logs"],
        task_names={t["id"]: t["name"] for t in task_runs},
        log_level=request.query_params.get("level", ""),
        log_search=request.query_params.get("q", ""),
        regions=",".join(REGIONS),
    )


async def _read_parts(api: Api, run: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    """What the regions in `wanted` show, read at once; an empty page for the others."""
    run_id = run["id"]
    failed = run["state_type"] in ("FAILED", "CRASHED")
    nothing = {"items": [], "total": 0}
    names = ("states", "tasks", "subflows", "artifacts", "deployment", "parent", "pause")
    answers = await asyncio.gather(
        api.get(f"/flow_runs/{run_id}/states"),
        _if(
            wanted & {"run-timeline", "run-graph", "run-result"},
            api.get("/task_runs", flow_run_id=run_id, limit=TASK_RUNS),
        ),
        _if(
            wanted & {"run-timeline", "run-graph"},
            api.get(
                "/flow_runs", parent_flow_run_id=run_id, limit=SUBFLOW_RUNS, sort="RUN_TIME_ASC"
            ),
        ),
        _if(
            wanted & {"run-artifacts"},
            api.get("/artifacts", flow_run_id=run_id, limit=ARTIFACTS),
        ),
        _optional(api.get(f"/deployments/{run['deployment_id']}"), run["deployment_id"]),
        _optional(api.get(f"/flow_runs/{run['parent_flow_run_id']}"), run["parent_flow_run_id"]),
        # The latest pause: what a paused run waits for, the input a resumed one was given.
        _optional(
            api.get(f"/flow_runs/{run_id}/pause"),
            run["state_type"] == "PAUSED" or wanted & {"run-result"},
        ),
        # Tracebacks are in the run's error lines (the engine logs them with the failure).
        _if(
            wanted & {"run-result"} if failed else set(),
            api.get("/logs", flow_run_id=run_id, min_level=40, limit=50),
        ),
        _if(wanted & {"run-logs"}, _latest_logs(api, flow_run_id=run_id)),
    )
    parts = dict(zip((*names, "errors", "logs"), answers, strict=True))
    for name in ("tasks", "subflows", "artifacts"):
        parts[name] = parts[name] or nothing
    return parts


def _pictures(
    run: Mapping[str, Any],
    states: list[dict[str, Any]],
    tasks: Mapping[str, Any],
    subflows: Mapping[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """The timeline and the dependency graph, and what they leave out."""
    task_runs, subflow_runs = tasks["items"], subflows["items"]
    # A subflow call is a task run of the parent too: in the graph it links to the subflow.
    links = {
        str(sub["parent_task_run_id"]): f"/flow-runs/{sub['id']}"
        for sub in subflow_runs
        if sub.get("parent_task_run_id")
    }
    spans = timeline.layout_gantt(
        timeline.spans(task_runs, subflow_runs, run, states), now=now, max_rows=TIMELINE_ROWS
    )
    graph = dependencies.layout_graph(task_runs, links=links, max_nodes=GRAPH_NODES)
    return {
        "task_total": tasks["total"],
        "task_counts": Counter(t["state_type"] for t in task_runs),
        "subflow_total": subflows["total"],
        "timeline": timeline.gantt(spans, now=now),
        "timeline_hidden": spans.hidden,
        "timeline_read": len(task_runs),
        "graph": dependencies.graph(graph),
        "graph_hidden": graph.hidden,
        "has_edges": bool(graph.edges),
    }


@router.get("/task-runs/{task_run_id}", response_class=HTMLResponse)
async def task_run_page(request: Request, task_run_id: uuid.UUID) -> Response:
    api = Api(request)
    task_run = await api.get(f"/task_runs/{task_run_id}")
    run_id = task_run["flow_run_id"]
    ups = list(dependencies.upstream(task_run).items())[:50]
    states, logs, flow_run, artifacts, subflows, *upstream_runs = await asyncio.gather(
        api.get(f"/task_runs/{task_run_id}/states"),
        api.get("/logs", task_run_id=str(task_run_id), limit=1000),
        _optional(api.get(f"/flow_runs/{run_id}"), run_id),
        api.get("/artifacts", task_run_id=str(task_run_id), limit=ARTIFACTS),
        _optional(
            api.get("/flow_runs", parent_flow_run_id=run_id, limit=SUBFLOW_RUNS),
            run_id and str(task_run["task_key"]).startswith("subflow:"),
        ),
        *(_optional(api.get(f"/task_runs/{up}"), up) for up, _ in ups),
    )
    subflow = next(
        (s for s in (subflows or {}).get("items", []) if s["parent_task_run_id"] == task_run["id"]),
        None,
    )
    now = dt.datetime.now(dt.UTC)
    return page(
        request,
        "flow_run/task_run.html",
        task_run=task_run,
        flow_run=flow_run,
        subflow=subflow,
        final=task_run["state_type"] in timeline.FINAL_TYPES,
        running_for=_running_for(task_run, now),
        states=_with_durations(states, now),
        logs={"items": logs["items"], "total": logs["total"], "skipped": 0},
        artifacts=artifacts["items"],
        upstream=[
            {"id": up, "arguments": arguments, "run": found}
            for (up, arguments), found in zip(ups, upstream_runs, strict=True)
        ],
    )


async def _read_flow_run(api: Api, given: str) -> dict[str, Any]:
    """The run with id `given`, or whose id starts with `given` (a short id)."""
    try:
        return await api.get(f"/flow_runs/{uuid.UUID(given)}")  # type: ignore[no-any-return]
    except ValueError:
        pass
    if not _PREFIX.fullmatch(given):
        raise ApiError(404, f"{given!r} is not a flow run id.")
    return await api.get(f"/flow_runs/by_prefix/{given}")  # type: ignore[no-any-return]


def _wanted(request: Request) -> set[str]:
    """The regions this request renders: those named by a refresh, else all of them."""
    header = request.headers.get("x-headwater-refresh")
    if not header:
        return {*REGIONS, "run-logs"}
    return {part.strip() for part in header.split(",")}


async def _if(wanted: set[str], call: Awaitable[T]) -> T | None:
    """`call`'s answer when a region needs it; otherwise it is not made."""
    if not wanted:
        if asyncio.iscoroutine(call):
            call.close()
        return None
    return await call


async def _optional(call: Awaitable[T], needed: Any) -> T | None:
    """`call`'s answer if `needed`; None if not, or if the object is gone (404)."""
    if not needed:
        if asyncio.iscoroutine(call):
            call.close()
        return None
    try:
        return await call
    except ApiError as error:
        if error.status in (404, 409):
            return None
        raise


async def _latest_logs(api: Api, *, flow_run_id: str) -> dict[str, Any]:
    """The latest `LOG_LINES` log lines of the run, oldest first, how many came before, and
    where the live stream should start (`after`) so that it does not send them again."""
    first = await api.get("/logs", flow_run_id=flow_run_id, limit=LOG_LINES)
    total, lines, skipped = first["total"], first["items"], 0
    if total > LOG_LINES:
        skipped = total - LOG_LINES
        tail = await api.get("/logs", flow_run_id=flow_run_id, limit=LOG_LINES, offset=skipped)
        lines = tail["items"]
    after = _stream_position(lines[-1]) if lines else None
    return {"items": lines, "total": total, "skipped": skipped, "after": after}


def _stream_position(line: Mapping[str, Any]) -> str:
    """A position of `/api/stream` (its `after`) a microsecond before the log `line`: the
    stream sends that line again (the page drops it by id) and every later one. States
    have no position in it, so they are all sent (they only refresh the page's parts)."""
    moment = parse_time(line["timestamp"])
    assert moment is not None
    return f"l:{moment.timestamp() - 1e-6!r}:{uuid.UUID(str(line['id'])).hex}"


def _running_for(run: Mapping[str, Any], now: dt.datetime) -> float | None:
    """Seconds since a run still going started (its `duration` is set once it ends)."""
    start = parse_time(run.get("start_time"))
    if start is None or run.get("end_time") or run["state_type"] in timeline.FINAL_TYPES:
        return None
    return max((now - start).total_seconds(), 0.0)


def _with_durations(states: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """States with `seconds`: how long the run stayed in each (the last: until now)."""
    result = []
    for index, state in enumerate(states):
        begin = parse_time(state["timestamp"])
        following = states[index + 1] if index + 1 < len(states) else None
        end = parse_time(following["timestamp"]) if following else None
        if following is None and state["type"] not in timeline.FINAL_TYPES:
            end = now
        seconds = (end - begin).total_seconds() if begin and end else None
        result.append({**state, "seconds": seconds})
    return result


def _failures(
    run: Mapping[str, Any], task_runs: list[dict[str, Any]], errors: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What went wrong: failed task runs and the tracebacks the run logged."""
    failed = [t for t in task_runs if t["state_type"] in ("FAILED", "CRASHED")]
    tracebacks = [
        line
        for line in (errors or {}).get("items", [])
        if "Traceback (most recent call last)" in line["message"]
    ]
    return {
        "failed": run["state_type"] in ("FAILED", "CRASHED"),
        "task_runs": failed[:20],
        "task_runs_more": max(len(failed) - 20, 0),
        "tracebacks": tracebacks[:5],
    }
