"""ASGI middleware: API-key authentication, request body limits and gzip request bodies.

Plain ASGI callables rather than Starlette's `BaseHTTPMiddleware`, which
costs a task and a copy per request on the record ingest path.
"""

from __future__ import annotations

import hmac
import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths under /api that answer without an API key (process liveness probes).
PUBLIC_PATHS = frozenset({"/api/health"})


async def _respond(
    send: Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"message": message, "detail": None}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class ApiKeyMiddleware:
    """Every /api route except `PUBLIC_PATHS` needs `Authorization: Bearer <api key>`."""

    def __init__(self, app: ASGIApp, *, api_key: str) -> None:
        self.app = app
        self._expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if (path == "/api" or path.startswith("/api/")) and path not in PUBLIC_PATHS:
                given = _header(scope, b"authorization") or b""
                if not hmac.compare_digest(given, self._expected):
                    if scope["type"] == "websocket":
                        await send({"type": "websocket.close", "code": 1008})
                        return
                    await _respond(
                        send,
                        401,
                        "Missing or wrong API key: send the header "
                        "'Authorization: Bearer <key>' with the server's HEADWATER_API_KEY.",
                        [(b"www-authenticate", b"Bearer")],
                    )
                    return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    """A body grew past its limit while being read."""


class BodyLimitMiddleware:
    """Refuse request bodies over a limit with 413; inflate `Content-Encoding: gzip` bodies.

    `limits` maps path prefixes to their limit (the longest match wins), e.g.
    a larger one for `/api/records` batches; other paths get `default_limit`.
    A gzip body's limit applies to its inflated size too, so a small
    compressed body cannot expand without bound.
    """

    def __init__(
        self, app: ASGIApp, *, default_limit: int, limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _respond(send, 413, _too_large(limit))
            return
        encoding = (_header(scope, b"content-encoding") or b"identity").strip().lower()
        if encoding == b"gzip":
            try:
                body = _inflate(await _read_all(receive, limit), limit)
            except _TooLarge:
                await _respond(send, 413, _too_large(limit))
                return
            except zlib.error as exc:
                await _respond(send, 400, f"The request body is not valid gzip data: {exc}.")
                return
            scope = dict(scope)
            scope["headers"] = [
                (key, value)
                for key, value in scope["headers"]
                if key not in (b"content-encoding", b"content-length")
            ] + [(b"content-length", str(len(body)).encode())]
            await self.app(scope, _replay(body, receive), send)
            return
        if encoding != b"identity":
            await _respond(
                send,
                415,
                f"Unsupported Content-Encoding {encoding.decode(errors='replace')!r}; "
                "send gzip or no encoding.",
            )
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Pass the body through; past `limit` bytes, answer 413 and end the app's reading."""
        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:
                        refused = True
                        await _respond(send, 413, _too_large(limit))
                    # To the app the client went away: whatever it answers is dropped.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


def _too_large(limit: int) -> str:
    return (
        f"The request body is larger than this endpoint's limit of {limit} bytes; "
        "send smaller batches (or raise the server's limit)."
    )


async def _read_all(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    body = inflater.decompress(data, limit + 1)
    if len(body) > limit or inflater.unconsumed_tail:
        raise _TooLarge
    if not inflater.eof:
        raise zlib.error("truncated gzip stream")
    return body


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
