"""Sign in and out of the UI when the server requires an API key."""

from __future__ import annotations

import urllib.parse

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from headwater.ui.render import page
from headwater.ui.security import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    check_api_key,
    new_session,
)

router = APIRouter()


def _next(value: str | None) -> str:
    """Only paths of this server: `//evil.example` and `https://...` become `/`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    if request.app.state.ui_keys.session is None:
        return RedirectResponse(_next(next), status_code=303)
    return page(request, "login.html", next=_next(next), failed=False)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("api_key") or [""])[0]
    target = _next((form.get("next") or ["/"])[0])
    keys = request.app.state.ui_keys
    if keys.session is None:
        return RedirectResponse(target, status_code=303)
    if not check_api_key(request.app.state.config.api_key, given):
        return page(request, "login.html", status=401, next=target, failed=True)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        new_session(keys),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
