"""Browser sessions and request forgery protection.

- **Sessions.** When the server requires an API key, the browser signs in once at
  `/login` with that key and gets an HttpOnly cookie signed with a key derived from it.
  A request carrying a valid cookie is let through to the API as if it carried
  `Authorization: Bearer <key>`; pages without one redirect to `/login`. Changing the
  server's API key ends every session.
- **Forgery.** A state-changing request that comes from a browser (it carries the
  session cookie, an `Origin` or a `Sec-Fetch-Site` header) must come from this
  server's own origin and carry the page's token in the `X-CSRF-Token` header. Other
  clients (the CLI, the SDK, curl) send none of these headers and are not affected.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "headwater_session"
CSRF_HEADER = b"x-csrf-token"
#: How long a browser session lasts.
SESSION_SECONDS = 7 * 24 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths a browser reaches without a session: sign-in, static files, webhooks, health.
_OPEN_PREFIXES = ("/login", "/static/", "/hooks/", "/api/health", "/favicon")


@dataclass(frozen=True)
class SessionKeys:
    """Keys of one server: `session` signs cookies (None: no API key, no sessions),
    `csrf` is the token pages send back."""

    session: bytes | None
    csrf: str


def session_keys(api_key: str | None, *, fallback: bytes) -> SessionKeys:
    """Keys derived from the API key, so that every replica agrees; without one, from
    `fallback` (random per process)."""
    if api_key:
        root = hashlib.sha256(b"headwater-ui:" + api_key.encode()).digest()
        session: bytes | None = hmac.new(root, b"session", hashlib.sha256).digest()
    else:
        root, session = fallback, None
    csrf = hmac.new(root, b"csrf", hashlib.sha256).hexdigest()
    return SessionKeys(session=session, csrf=csrf)


def new_session(keys: SessionKeys, *, now: float | None = None) -> str:
    """A cookie value: the time it was issued and its signature."""
    assert keys.session is not None, "sessions need an API key"
    issued = str(int(time.time() if now is None else now))
    return f"{issued}.{_sign(keys.session, issued)}"


def valid_session(keys: SessionKeys, value: str | None, *, now: float | None = None) -> bool:
    """Whether `value` is a cookie this server issued less than SESSION_SECONDS ago."""
    if keys.session is None or not value or "." not in value:
        return False
    issued, signature = value.split(".", 1)
    if not issued.isdigit() or not hmac.compare_digest(signature, _sign(keys.session, issued)):
        return False
    age = (time.time() if now is None else now) - int(issued)
    return 0 <= age < SESSION_SECONDS


def check_api_key(api_key: str | None, given: str) -> bool:
    return bool(api_key) and hmac.compare_digest(given.encode(), (api_key or "").encode())


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {bytes(k): bytes(v) for k, v in scope["headers"]}


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _same_origin(origin: bytes, host: bytes | None) -> bool:
    parsed = urllib.parse.urlsplit(origin.decode("latin-1"))
    return host is not None and parsed.netloc.encode("latin-1") == host


class UiGuard:
    """ASGI middleware: sessions, sign-in redirects and forgery checks (module docstring)."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, keys: SessionKeys) -> None:
        self.app = app
        self.api_key = api_key
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        headers = _headers(scope)
        session = valid_session(self.keys, _cookie(headers, SESSION_COOKIE))
        from_browser = session or any(
            name in headers for name in (b"origin", b"sec-fetch-site", b"cookie")
        )
        if method not in _SAFE_METHODS and from_browser and not path.startswith("/hooks/"):
            origin = headers.get(b"origin")
            if origin is not None and not _same_origin(origin, headers.get(b"host")):
                shown = origin.decode("latin-1")
                await _refuse(
                    send, 403, f"Cross-site request refused: Origin {shown!r} is not this server."
                )
                return
            if headers.get(b"sec-fetch-site") == b"cross-site":
                await _refuse(send, 403, "Cross-site request refused.")
                return
            token = headers.get(CSRF_HEADER, b"").decode("latin-1")
            if path not in ("/login", "/logout") and not hmac.compare_digest(token, self.keys.csrf):
                await _refuse(
                    send,
                    403,
                    "Missing or wrong CSRF token: send the X-CSRF-Token header of the page "
                    "(reload the page to get a new one).",
                )
                return
        if self.api_key:
            is_api = path == "/api" or path.startswith("/api/")
            if is_api and session and b"authorization" not in headers:
                scope = dict(scope)
                scope["headers"] = [
                    *scope["headers"],
                    (b"authorization", f"Bearer {self.api_key}".encode()),
                ]
            elif not is_api and not session and not path.startswith(_OPEN_PREFIXES):
                query = scope["query_string"].decode("latin-1")
                target = path + ("?" + query if query else "")
                location = "/login?" + urllib.parse.urlencode({"next": target})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", location.encode()), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
        if path.startswith(("/api/", "/static/", "/hooks/")):
            await self.app(scope, receive, send)
            return
        # Pages: say how long the server took (Server-Timing: app;dur=<ms>), for the
        # browser's network panel and bench/ui_pages.py.
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={took:.1f}".encode()),
                ]
            await send(message)

        await self.app(scope, receive, timed)


async def _refuse(send: Send, status: int, message: str) -> None:
    import json

    body = json.dumps({"message": message, "detail": None}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
