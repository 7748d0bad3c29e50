"""UI page: variables, listed and searched by name or tag; created, edited and deleted
from the browser through `/api/variables` (static/resources.js)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api
from headwater.ui.render import page

router = APIRouter()

PAGE_SIZE = 50


@router.get("/variables", response_class=HTMLResponse)
async def variables_page(
    request: Request,
    name: str | None = None,
    tag: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    found = await Api(request).get(
        "/variables",
        name_contains=(name or "").strip(),
        tags=[tag.strip()] if tag and tag.strip() else None,
        offset=offset,
        limit=PAGE_SIZE,
    )
    return page(
        request,
        "variables/list.html",
        variables=found["items"],
        total=found["total"],
        offset=offset,
        limit=PAGE_SIZE,
        name=name or "",
        tag=tag or "",
        filtered=bool(name or tag),
    )
