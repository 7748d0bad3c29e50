"""`send-notification`: render the subject and body, deliver them with apprise.

URLs come from the action (`url`) or from a Secret (`secret`: its value is one
apprise URL or a list of them), so tokens can stay out of the automation.
Each URL is delivered separately, in a thread bounded by a timeout; what
apprise logged while delivering says why one failed. Errors never show a
URL's credentials: URLs appear as `slack://…`, and every part of a URL that
could be a token is blanked out of apprise's messages.

Generic URLs whose host the author chooses (`json://`, `xml://`, `form://`,
`mailto://` and their secure forms) pass the same address check as
call-webhook (`ssrf.py`); vendor services (`slack://`, `msteams://`, ...)
go to their vendor's hosts.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

from headwater.server.automations import ssrf
from headwater.server.automations.failures import (
    PermanentActionError,
    TransientActionError,
    describe_url,
    hide_urls,
    redact,
    secret_parts,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from headwater.schemas.automations import SendNotification
    from headwater.settings import Settings

#: Seconds one URL may take to deliver before the attempt counts as failed.
DELIVERY_TIMEOUT = 30.0
#: Schemes whose host is chosen by the author: checked like call-webhook URLs.
_CHECKED_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos"})


def notification_urls(
    conn: sa.Connection, action: SendNotification, settings: Settings
) -> list[str]:
    """The apprise URLs of the action: given, or read from its Secret (decrypted).

    Raises:
        PermanentActionError: no such secret, a value that is not URLs, or no key.
    """
    if action.url is not None:
        urls = [action.url] if isinstance(action.url, str) else list(action.url)
    else:
        assert action.secret is not None  # the model requires one of them
        urls = _secret_urls(conn, action.secret, settings)
    urls = [url.strip() for url in urls if isinstance(url, str) and url.strip()]
    if not urls:
        raise PermanentActionError("send-notification has no URL to send to.")
    return urls


def _secret_urls(conn: sa.Connection, name: str, settings: Settings) -> list[str]:
    from headwater.exceptions import HeadwaterError, ObjectNotFound
    from headwater.server import crypto
    from headwater.server.repositories import secrets

    try:
        row = secrets.row(conn, name)
    except ObjectNotFound:
        raise PermanentActionError(
            f"No secret named {name!r} holds the notification URLs; create it with "
            f"`headwater secret set {name} 'slack://...'`."
        ) from None
    try:
        value = crypto.load_key(settings).decrypt(name, row["ciphertext"], row["key_id"])
    except HeadwaterError as exc:
        raise PermanentActionError(f"Cannot read secret {name!r}: {exc}") from None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise PermanentActionError(
                    f"Secret {name!r} looks like a JSON list but does not parse; store one "
                    'apprise URL, or a JSON list of them: ["slack://...", "mailto://..."].'
                ) from None
        else:
            # Several URLs may also be separated by commas, spaces or new lines, as apprise does.
            value = [part for part in text.replace(",", " ").split() if part]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PermanentActionError(
            f"Secret {name!r} must hold an apprise URL or a list of them, not a "
            f"{type(value).__name__}."
        )
    return value


def check_destination(url: str, allowed: ssrf.AllowList) -> None:
    """Refuse a generic URL (json://, mailto://, ...) whose host is not public nor allowed."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return  # apprise refuses it with its own message
    scheme = parts.scheme.lower()
    if scheme not in _CHECKED_SCHEMES:
        return
    host = parts.hostname or ""
    if scheme.startswith("mailto"):
        smtp = dict(urllib.parse.parse_qsl(parts.query)).get("smtp")
        host = smtp or host
        port = port or (465 if scheme == "mailtos" else 25)
    else:
        port = port or (443 if scheme.endswith("s") else 80)
    try:
        ssrf.check_host(host, port, allowed, what=f"notification URL {describe_url(url)}")
    except ssrf.RefusedAddress as exc:
        raise PermanentActionError(str(exc)) from None
    except ssrf.ResolutionError as exc:
        raise TransientActionError(f"Notification to {describe_url(url)}: {exc}") from None


class _Capture(logging.Handler):
    """Collects apprise's warnings while one delivery runs.

    Apprise may log from its own worker threads, so records are not filtered
    by thread; deliveries run one at a time (the executor is sequential), so
    what is captured belongs to this delivery, except for the rare leftovers
    of an earlier delivery that timed out.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a broken log record must not break delivery
            self.lines.append(str(record.msg))


def _deliver_one(url: str, title: str, body: str, timeout: float) -> tuple[bool, list[str]]:
    """Send through apprise in a thread; (delivered, apprise's warnings). Raises on a bad URL."""
    import apprise

    outcome: dict[str, Any] = {}

    def send() -> None:
        handler = _Capture()
        logger = logging.getLogger("apprise")
        logger.addHandler(handler)
        try:
            notifier = apprise.Apprise()
            if not notifier.add(url):
                outcome["invalid"] = True
                return
            outcome["delivered"] = bool(notifier.notify(title=title, body=body))
        except Exception as exc:  # a plugin raising instead of returning False
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            logger.removeHandler(handler)
            outcome["log"] = handler.lines

    thread = threading.Thread(target=send, name="headwater-notify", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        # It may still deliver; notifications are at most once, so this is not retried.
        raise PermanentActionError(
            f"Notification to {describe_url(url)} did not finish within {timeout:g} s; it may "
            "or may not have been delivered, and is not retried."
        )
    if outcome.get("invalid"):
        raise PermanentActionError(
            f"not an apprise URL: {describe_url(url)} (see https://appriseit.com/ for the "
            "URL of each service, e.g. slack://TokenA/TokenB/TokenC, mailto://user:pass@host)"
        )
    log = list(outcome.get("log", []))
    if "error" in outcome:
        log.append(outcome["error"])
    return bool(outcome.get("delivered")), log


def deliver(
    urls: list[str],
    title: str,
    body: str,
    *,
    allowed: ssrf.AllowList,
    delivered_before: list[int] | None = None,
    timeout: float = DELIVERY_TIMEOUT,
) -> dict[str, Any]:
    """Deliver to each URL not delivered before; the result to record.

    Returns:
        `{"delivered": [indexes of urls], "destinations": ["slack://…", ...]}`.

    Raises:
        PermanentActionError: a URL is not an apprise URL, or is refused.
        TransientActionError: a delivery failed (its `result` lists those that
            succeeded, so the retry sends only to the others).
    """
    secrets: set[str] = set()
    for url in urls:
        secrets |= secret_parts(url)
    delivered = sorted(set(delivered_before or []))
    failures: list[str] = []
    for index, url in enumerate(urls):
        if index in delivered:
            continue
        check_destination(url, allowed)
        ok, log = _deliver_one(url, title, body, timeout)
        if ok:
            delivered.append(index)
            continue
        reason = "; ".join(dict.fromkeys(line.strip() for line in log if line.strip()))
        reason = hide_urls(redact(reason, secrets)) or "apprise reported a failure"
        failures.append(f"{describe_url(url)}: {reason[:500]}")
    result: dict[str, Any] = {
        "delivered": sorted(delivered),
        "destinations": [describe_url(url) for url in urls],
    }
    if failures:
        raise TransientActionError(
            "Notification not delivered to " + " | ".join(failures), result=result
        )
    return result
