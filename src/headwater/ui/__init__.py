"""The web UI: server-rendered pages with hand-written JavaScript and CSS, served at `/`.

`mount(app)` adds the pages, the static files and the browser-session guard to an app
made by `headwater.server.app.create_app`. Pages read and change everything through the
app's own REST API (`headwater.ui.api`), the routes the CLI and the SDK call, so the UI
cannot disagree with them. Nothing else in the package imports this one; the server's
entry point (`headwater.server.asgi`) mounts it.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from headwater.ui.api import ApiError
from headwater.ui.pages import routers
from headwater.ui.render import error_page
from headwater.ui.security import UiGuard, session_keys

__all__ = ["mount"]


def mount(app: FastAPI) -> FastAPI:
    """Serve the UI from `app`: pages at `/`, static files at `/static`, login at `/login`."""
    api_key: str | None = app.state.config.api_key
    app.state.ui_keys = session_keys(api_key, fallback=secrets.token_bytes(32))
    for router in routers():
        app.include_router(router, include_in_schema=False)
    app.mount("/static", StaticFiles(packages=[("headwater.ui", "static")]), name="static")
    app.add_exception_handler(ApiError, error_page)  # type: ignore[arg-type]
    # Added after the API key check, so it runs first: a valid browser session becomes
    # the bearer header that check expects.
    app.add_middleware(UiGuard, api_key=api_key, keys=app.state.ui_keys)
    return app
