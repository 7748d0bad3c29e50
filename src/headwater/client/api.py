"""A small synchronous client of the REST API, for the control plane.

Deployments, work pools, workers, concurrency limits, `run_deployment` and the
CLI commands that manage them all speak to the server through `ApiClient`:
`request()` returns the decoded JSON body, and an error answer becomes the
matching `HeadwaterError` (404 `ObjectNotFound`, 409 `Conflict`, 422
`ValueError`-like `InvalidRequest`, ...) carrying the server's message.

`get_client()` picks the transport from the settings:

- `HEADWATER_API_URL` set: HTTP to that server.
- Not set (embedded mode): the same API app, run in this process on the
  embedded store, without a network hop. The app is built on first use
  (FastAPI and SQLAlchemy are imported then, never with `import headwater`).

httpx is imported when a client is made, not with this module.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from headwater.exceptions import (
    AmbiguousIdError,
    ConcurrencySlotsUnavailable,
    Conflict,
    HeadwaterError,
    ObjectNotFound,
    PayloadTooLarge,
)

if TYPE_CHECKING:
    import httpx

    from headwater.settings import Settings

__all__ = ["ApiClient", "InvalidRequest", "ServerUnavailable", "get_client", "tls_options"]


class InvalidRequest(HeadwaterError, ValueError):
    """The server refused the request's content (422 or 400); the message names the field."""


class ServerUnavailable(HeadwaterError):
    """The server could not be reached, or answered with an error of its own (5xx)."""


class ApiClient:
    """JSON over HTTP to a Headwater API, with errors as exceptions.

    Example:
        >>> client = ApiClient.connect("http://127.0.0.1:4200/api")
        >>> client.request("GET", "/work_pools")
    """

    def __init__(self, http: httpx.Client, *, description: str) -> None:
        self._http = http
        #: where requests go, for error messages ("the server at http://...")
        self.description = description

    @classmethod
    def connect(
        cls, api_url: str, *, api_key: str | None = None, timeout: float = 30.0
    ) -> ApiClient:
        """A client of the server at `api_url` (`.../api`)."""
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        http = httpx.Client(
            base_url=api_url.rstrip("/"), headers=headers, timeout=timeout, **tls_options(api_url)
        )
        return cls(http, description=f"the Headwater server at {api_url.rstrip('/')}")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON body of the answer to `method path` (None for 204).

        Raises:
            ObjectNotFound: 404. Conflict: 409. PayloadTooLarge: 413.
            ConcurrencySlotsUnavailable: 423.
            InvalidRequest: 400 or 422. ServerUnavailable: unreachable, 401/403, or 5xx.
        """
        import httpx

        options: dict[str, Any] = {}
        if timeout is not None:
            options["timeout"] = timeout
        try:
            response = self._http.request(method, path, json=json, params=params, **options)
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"Cannot reach {self.description}: {transport_reason(exc)}; is `headwater "
                "server start` running, and HEADWATER_API_URL its address?"
            ) from None
        status = response.status_code
        if status < 400:
            return None if status == 204 or not response.content else response.json()
        message = error_message(response)
        if status == 404:
            raise ObjectNotFound(message)
        if status == 409:
            if message.startswith("Several"):
                raise AmbiguousIdError(message)
            raise Conflict(message)
        if status == 413:
            raise PayloadTooLarge(message)
        if status == 423:  # concurrency slots taken; the body says which limit, and when
            body = response.json()
            raise ConcurrencySlotsUnavailable(
                message, limit=body.get("limit"), retry_after=body.get("retry_after")
            )
        if status in (400, 422):
            raise InvalidRequest(message)
        if status in (401, 403):
            raise ServerUnavailable(
                f"{self.description[0].upper()}{self.description[1:]} refused the request "
                f"({status}): set HEADWATER_API_KEY to the server's API key."
            )
        raise ServerUnavailable(
            f"{self.description[0].upper()}{self.description[1:]} answered {status} to "
            f"{method} {path}: {message}"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _EmbeddedClient(ApiClient):
    """The API app on the embedded store, called in this process (no socket)."""

    def __init__(self, settings: Settings) -> None:
        import warnings

        with warnings.catch_warnings():
            # Starlette asks for httpx2 in its TestClient; the warning would add a
            # line to every embedded-mode CLI error.
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient

        from headwater.server.app import create_app

        self._test_client = TestClient(create_app(settings), base_url="http://embedded/api")
        self._test_client.__enter__()  # runs the app's startup: schema, notifier
        super().__init__(self._test_client, description="the embedded store's API")

    def close(self) -> None:
        self._test_client.__exit__(None, None, None)


_clients: dict[tuple[str | None, str], ApiClient] = {}
_clients_lock = threading.Lock()


def get_client(settings: Settings | None = None) -> ApiClient:
    """The process's client for `settings` (default: the current settings), made once.

    Against a server when `HEADWATER_API_URL` is set, else the embedded store's API.
    Clients live until the process exits; do not close them.
    """
    from headwater.settings import get_settings

    settings = settings or get_settings()
    key = (settings.api_url, settings.effective_database_url)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if settings.api_url:
                client = ApiClient.connect(settings.api_url, api_key=settings.api_key or None)
            else:
                client = _EmbeddedClient(settings)
            _clients[key] = client
        return client


def tls_options(url: str) -> dict[str, Any]:
    """httpx.Client options for `url`: a plain-HTTP URL needs no certificates, and loading
    them costs ~45 ms per client (a flow run's process makes two)."""
    return {"verify": False} if url.lower().startswith("http://") else {}


def transport_reason(exc: httpx.TransportError) -> str:
    """A short lowercase reason from a transport error ('connection refused')."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    if text.startswith("[Errno") and "] " in text:
        text = text.split("] ", 1)[1]
    text = text.splitlines()[0]
    return text[:1].lower() + text[1:]


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else "no details"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(body)[:200]
