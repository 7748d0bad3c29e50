"""Real receivers for notifications: an SMTP server and an HTTP endpoint on loopback."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.server.helpers import free_port


class Mailbox:
    """Messages an aiosmtpd server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def bodies(self) -> list[str]:
        with self._lock:
            messages = list(self.messages)
        texts = []
        for message in messages:
            part = message.get_body(preferencelist=("plain", "html"))
            texts.append(part.get_content() if part is not None else "")
        return texts


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server on 127.0.0.1 (no TLS, no auth); yields (port, mailbox)."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


class Inbox:
    """Requests an HTTP receiver got: (path, headers, JSON or text body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.lock = threading.Lock()

    def bodies(self) -> list[Any]:
        with self.lock:
            return [body for _path, _headers, body in self.requests]


@contextlib.contextmanager
def http_receiver() -> Iterator[tuple[str, Inbox]]:
    """An HTTP server on 127.0.0.1 that records every request; yields (base URL, inbox)."""
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            with inbox.lock:
                inbox.requests.append((self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_PUT = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", inbox
    finally:
        server.shutdown()
        server.server_close()
