"""How an action fails: for good (`PermanentActionError`) or perhaps for now
(`TransientActionError`, retried with backoff), and keeping secrets out of messages."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable


class ActionError(Exception):
    """An action that did not succeed; `str()` is the message recorded as its error.

    `result` is kept with the action (e.g. which notification URLs were
    already delivered, so a retry does not send to them again).
    """

    transient = False

    def __init__(self, message: str, *, result: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.result = result


class PermanentActionError(ActionError):
    """Retrying cannot help: a missing deployment, a bad template, a refused address."""


class TransientActionError(ActionError):
    """May succeed later: a network error, a 5xx answer, a busy database."""

    transient = True


#: Schemes whose host is a server's address, not a token.
_HOST_IS_ADDRESS = frozenset(
    {"http", "https", "json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos"}
)
#: Parts shorter than this are not redacted (they would blank out ordinary words).
_MIN_SECRET_CHARS = 4


def secret_parts(url: str) -> set[str]:
    """The parts of a URL that may be credentials: password, user, path segments, query values.

    Apprise URLs carry tokens in any of these (`slack://T000/B000/XXXX`,
    `mailto://user:password@host`), so all of them are treated as secret.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return {url}
    found: set[str] = set()
    for value in (parts.username, parts.password):
        if value:
            found.add(value)
            found.add(urllib.parse.unquote(value))
    for segment in parts.path.split("/"):
        if segment:
            found.add(segment)
            found.add(urllib.parse.unquote(segment))
    for _key, value in urllib.parse.parse_qsl(parts.query):
        if value:
            found.add(value)
    # The host too for schemes that put a token there (`slack://TOKEN@...`, `tgram://bot/...`).
    if parts.scheme not in _HOST_IS_ADDRESS and parts.hostname:
        found.add(parts.hostname)
    return {part for part in found if len(part) >= _MIN_SECRET_CHARS}


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (longest first) replaced by `***`."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return text


_URL_PATTERN = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,20})://\S+")


def describe_url(url: str) -> str:
    """A URL shown without its credentials: `slack://…`, `https://example.com/…`."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    scheme = parts.scheme or "?"
    if scheme in _HOST_IS_ADDRESS:
        host = parts.hostname or ""
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{scheme}://{host}{port}/…" if host else f"{scheme}://…"
    return f"{scheme}://…"


def hide_urls(text: str) -> str:
    """`text` with every URL in it shown as `scheme://…`."""
    return _URL_PATTERN.sub(lambda match: f"{match.group(1)}://…", text)
