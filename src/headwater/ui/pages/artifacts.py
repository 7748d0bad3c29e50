"""UI pages: artifacts, filtered by key, type and run, and one artifact in full with the
other versions of its key.

Artifacts are rendered by the shared `_artifact.html` macro (markdown without raw HTML,
safe links only); the list shows a one-line preview of each as plain text.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api, ApiError
from headwater.ui.render import page

router = APIRouter()

PAGE_SIZE = 50
TYPES = ("markdown", "table", "link", "image", "progress")
#: Characters of text shown in a list's preview.
PREVIEW_LENGTH = 90


@router.get("/artifacts", response_class=HTMLResponse)
async def artifacts_page(
    request: Request,
    key: str | None = None,
    type: str | None = None,
    flow_run_id: str | None = None,
    latest_only: bool = False,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    api = Api(request)
    filters = {
        "key": (key or "").strip(),
        "type": type if type in TYPES else None,
        "flow_run_id": (flow_run_id or "").strip(),
    }
    problem = None
    try:
        found = await api.get(
            "/artifacts", **filters, latest_only=latest_only, offset=offset, limit=PAGE_SIZE
        )
    except ApiError as error:
        if error.status != 422:
            raise
        # A key or run id the API refuses: say why, above an empty list.
        problem, found = error.message, {"items": [], "total": 0}
    items = found["items"]
    runs = await _flow_runs(api, {item["flow_run_id"] for item in items} - {None})
    return page(
        request,
        "artifacts/list.html",
        artifacts=[{**item, "preview": preview(item)} for item in items],
        flow_runs=runs,
        total=found["total"],
        offset=offset,
        limit=PAGE_SIZE,
        key=key or "",
        type=filters["type"] or "",
        flow_run_id=filters["flow_run_id"],
        latest_only=latest_only,
        types=TYPES,
        filtered=any(filters.values()),
        problem=problem,
    )


@router.get("/artifacts/{artifact_id}", response_class=HTMLResponse)
async def artifact_page(request: Request, artifact_id: str) -> HTMLResponse:
    try:
        uuid.UUID(artifact_id)
    except ValueError:
        raise ApiError(404, f"No artifact has the id {artifact_id!r}.") from None
    api = Api(request)
    artifact = await api.get(f"/artifacts/{artifact_id}")
    flow_run, task_run, versions = await asyncio.gather(
        _optional(api, "/flow_runs", artifact["flow_run_id"]),
        _optional(api, "/task_runs", artifact["task_run_id"]),
        _versions(api, artifact["key"]),
    )
    return page(
        request,
        "artifacts/detail.html",
        artifact=artifact,
        flow_run=flow_run,
        task_run=task_run,
        versions=[{**item, "preview": preview(item)} for item in versions["items"]],
        versions_total=versions["total"],
    )


def preview(artifact: dict[str, Any]) -> str:
    """A line of plain text that says what the artifact holds."""
    kind, data = artifact["type"], artifact["data"]
    if kind == "table" and isinstance(data, dict):
        rows = data.get("rows") or []
        columns = data.get("columns") or (rows[0] if rows else [])
        return f"{_count(len(rows), 'row')} x {_count(len(columns), 'column')}"
    if kind == "link" and isinstance(data, dict):
        text = data.get("link_text")
        return f"{text} ({data.get('link')})" if text else str(data.get("link"))
    if kind == "progress" and isinstance(data, int | float):
        return f"{data:.0f}%"
    text = " ".join(str(data or "").split())
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 3] + "..."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


async def _flow_runs(api: Api, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The flow runs with these ids that still exist, by id (for their names)."""
    found = await asyncio.gather(*(_optional(api, "/flow_runs", run_id) for run_id in ids))
    return {run["id"]: run for run in found if run is not None}


async def _optional(api: Api, collection: str, item_id: str | None) -> dict[str, Any] | None:
    """The item, or None when there is no id or the item is gone."""
    if item_id is None:
        return None
    try:
        item: dict[str, Any] = await api.get(f"{collection}/{item_id}")
    except ApiError as error:
        if error.status == 404:
            return None
        raise
    return item


async def _versions(api: Api, key: str | None) -> dict[str, Any]:
    if key is None:
        return {"items": [], "total": 0}
    found: dict[str, Any] = await api.get("/artifacts", key=key, limit=PAGE_SIZE)
    return found
