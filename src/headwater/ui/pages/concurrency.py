"""UI page: concurrency limits with their occupied slots and the leases holding them;
created, changed, reset and deleted from the browser through `/api/concurrency_limits`.

Limits named `tag:<tag>` limit the task runs tagged `<tag>`; a tab lists only those.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api, ApiError
from headwater.ui.render import page

router = APIRouter()

PAGE_SIZE = 50
TAG_PREFIX = "tag:"


@router.get("/concurrency-limits", response_class=HTMLResponse)
async def concurrency_limits_page(
    request: Request,
    name: str | None = None,
    kind: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    api = Api(request)
    prefix = (name or "").strip()
    tags_only = kind == "tag"
    if tags_only and not prefix.startswith(TAG_PREFIX):
        prefix = TAG_PREFIX + prefix
    found = await api.get("/concurrency_limits", name_prefix=prefix, offset=offset, limit=PAGE_SIZE)
    limits = [_view(item) for item in found["items"]]
    held = [item for item in limits if item["active_slots"] > 0]
    leases = await asyncio.gather(*(_leases(api, item["name"]) for item in held))
    for item, its_leases in zip(held, leases, strict=True):
        item["leases"] = its_leases
    return page(
        request,
        "concurrency/list.html",
        limits=limits,
        total=found["total"],
        offset=offset,
        limit=PAGE_SIZE,
        name=name or "",
        tags_only=tags_only,
    )


def _view(item: dict[str, Any]) -> dict[str, Any]:
    """The limit with what the page shows: its URL path, how full it is, its kind."""
    taken, slots = item["active_slots"], item["limit"]
    # A limit of 0 slots refuses everything: shown full, as nothing more fits.
    percent = min(100.0, 100.0 * taken / slots) if slots > 0 else 100.0
    return {
        **item,
        "path": "/api/concurrency_limits/" + urllib.parse.quote(item["name"], safe=""),
        "percent": percent,
        "tag": item["name"][len(TAG_PREFIX) :] if item["name"].startswith(TAG_PREFIX) else None,
        "leases": [],
    }


async def _leases(api: Api, name: str) -> list[dict[str, Any]]:
    try:
        leases: list[dict[str, Any]] = await api.get(
            "/concurrency_limits/" + urllib.parse.quote(name, safe="") + "/leases"
        )
    except ApiError as error:
        if error.status == 404:  # deleted since the list was read
            return []
        raise
    return leases
