"""How pages read and change data: the app's own REST API, called in process.

Each call goes through the whole app (middleware, validation, the route), exactly as a
request from the CLI would, over an ASGI transport instead of a socket. An answer of
400 or more raises `ApiError`, which the UI renders as an error page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpx
from fastapi import Request

#: The host name internal requests carry; never resolved.
_BASE_URL = "http://headwater-ui"


class ApiError(Exception):
    """The API refused a page's request; `status` and `message` are the API's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Api:
    """The REST API of the app serving `request`, with the server's credentials."""

    def __init__(self, request: Request) -> None:
        app = request.app
        client: httpx.AsyncClient | None = getattr(app.state, "ui_client", None)
        if client is None:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=_BASE_URL, timeout=60
            )
            app.state.ui_client = client
        self._client = client
        api_key: str | None = app.state.config.api_key
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    async def get(self, path: str, **params: Any) -> Any:
        """GET `path` (under /api) with the query `params` (None values left out)."""
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        """POST `body` as JSON to `path` (under /api)."""
        return await self.request("POST", path, json=body, params=params)

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        response = await self._client.request(
            method, f"/api{path}", json=json, params=query, headers=self._headers
        )
        if response.status_code >= 400:
            raise ApiError(response.status_code, _message(response))
        return response.json() if response.content else None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list) and detail:
            return "; ".join(str(item.get("msg", item)) for item in detail)
        return str(body.get("message") or detail or body)
    return str(body)


async def nothing() -> None:
    """An awaitable answering None: for the parts of a page a refresh does not ask for."""
    return None


async def deployment_names(
    api: Api, runs: Iterable[dict[str, Any]], known: Iterable[dict[str, Any]] = ()
) -> dict[str, str]:
    """Deployment id -> name for `runs`: from the deployments already `known`, else read
    one by one (those gone are left out)."""
    names = {str(d["id"]): str(d["name"]) for d in known}
    missing = sorted(
        {str(run["deployment_id"]) for run in runs if run.get("deployment_id")} - set(names)
    )
    found = await asyncio.gather(
        *(api.get(f"/deployments/{deployment_id}") for deployment_id in missing),
        return_exceptions=True,
    )
    for deployment_id, item in zip(missing, found, strict=True):
        if isinstance(item, dict):
            names[deployment_id] = str(item["name"])
    return names
