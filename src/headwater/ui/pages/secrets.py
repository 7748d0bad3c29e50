"""UI page: secrets, by name, with their key ids and times; created, replaced and deleted
from the browser through `/api/secrets` (static/resources.js).

The page reads metadata only (`GET /api/secrets`): no value is ever rendered, and the
browser only sends values (in a password field), never reads them back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api
from headwater.ui.render import page

router = APIRouter()

PAGE_SIZE = 50


@router.get("/secrets", response_class=HTMLResponse)
async def secrets_page(
    request: Request,
    name: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    found = await Api(request).get(
        "/secrets", name_contains=(name or "").strip(), offset=offset, limit=PAGE_SIZE
    )
    return page(
        request,
        "secrets/list.html",
        secrets=found["items"],
        total=found["total"],
        offset=offset,
        limit=PAGE_SIZE,
        name=name or "",
    )
