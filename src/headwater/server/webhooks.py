"""Turning an HTTP request into an event: signatures, the template context, rendering.

A webhook's template sees the request (`body`, `raw_body`, `headers`, `query`,
`method`), the webhook (`webhook.id`, `webhook.name`) and `now`, and renders the
event as JSON. The server adds the webhook as a related resource with role
`webhook`. Signed webhooks need `X-Headwater-Signature: sha256=<hex>`, the
HMAC-SHA256 of the body (or of `<timestamp>.<body>` when `X-Headwater-Timestamp`
is sent) with the signing secret; GitHub's `X-Hub-Signature-256` is accepted too.

    >>> sign("s3cret", b'{"a": 1}')
    'sha256=...'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from headwater.core.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from headwater.exceptions import HeadwaterError
from headwater.schemas.events import Event

#: The signature header: `sha256=<hex of HMAC-SHA256(secret, signed bytes)>`.
SIGNATURE_HEADER = "x-headwater-signature"
#: GitHub's signature header, the same scheme: accepted in place of ours.
GITHUB_SIGNATURE_HEADER = "x-hub-signature-256"
#: Optional: epoch seconds; when sent, `<timestamp>.<body>` is signed.
TIMESTAMP_HEADER = "x-headwater-timestamp"
#: A signed timestamp further than this from the server's clock is refused (seconds).
MAX_TIMESTAMP_SKEW = 300.0

_JSON_TYPES = ("application/json",)
_FORM_TYPE = "application/x-www-form-urlencoded"


class WebhookRequestError(HeadwaterError):
    """The request, or what the template made of it, is not a valid event (400)."""


class SignatureError(HeadwaterError):
    """A signed webhook's request has no valid signature (401)."""


# -- signatures ------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The `X-Headwater-Signature` value of `body` (and `timestamp`, if given).

    Example:
        >>> sign("s3cret", b"{}", timestamp="1700000000")
        'sha256=...'
    """
    signed = body if timestamp is None else timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    """Raise `SignatureError`, saying what is wrong, unless the headers sign `body`."""
    given = headers.get(SIGNATURE_HEADER) or headers.get(GITHUB_SIGNATURE_HEADER)
    if not given:
        raise SignatureError(
            "This webhook requires signed requests: send the header X-Headwater-Signature: "
            "sha256=<hex HMAC-SHA256 of the body, keyed with the webhook's signing secret>."
        )
    timestamp = headers.get(TIMESTAMP_HEADER)
    if timestamp is not None:
        try:
            moment = float(timestamp)
        except ValueError:
            moment = float("nan")
        if moment != moment or moment in (float("inf"), float("-inf")):
            raise SignatureError(
                f"X-Headwater-Timestamp must be epoch seconds (e.g. {int(now)}), "
                f"not {timestamp[:40]!r}."
            )
        if abs(now - moment) > MAX_TIMESTAMP_SKEW:
            raise SignatureError(
                f"X-Headwater-Timestamp {timestamp[:40]} is {abs(now - moment):.0f} s from the "
                f"server's clock; at most {MAX_TIMESTAMP_SKEW:.0f} s are allowed. Sign each "
                "request with the current time (and check the sender's clock)."
            )
    expected = sign(secret, body, timestamp)
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        signed = "'<timestamp>.<body>'" if timestamp is not None else "the raw body"
        raise SignatureError(
            f"The request's signature does not match: X-Headwater-Signature must be "
            f"'sha256=' and the hex HMAC-SHA256 of {signed}, keyed with the webhook's "
            "signing secret."
        )


# -- the template context --------------------------------------------------------------------


def _one_or_list(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Pairs as a dict: a key given once maps to its value, a repeated one to a list."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key not in result:
            result[key] = value
        elif isinstance(result[key], list):
            result[key].append(value)
        else:
            result[key] = [result[key], value]
    return result


def parse_body(raw: bytes, content_type: str) -> Any:
    """The body as the template sees it: JSON parsed, form fields as a dict, else text."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    text = raw.decode("utf-8", errors="replace")
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise WebhookRequestError(
                f"The request body is not valid JSON ({exc}), but its Content-Type is "
                f"{media_type!r}; send JSON, or another Content-Type to receive it as text."
            ) from None
    if media_type == _FORM_TYPE:
        return _one_or_list(urllib.parse.parse_qsl(text, keep_blank_values=True))
    return text


def request_context(
    *,
    body: bytes,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    method: str,
    webhook_id: uuid.UUID,
    name: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """What a webhook's template sees of a request."""
    header_map: dict[str, str] = {}
    for key, value in headers:
        key = key.lower()
        header_map[key] = f"{header_map[key]}, {value}" if key in header_map else value
    return {
        "body": parse_body(body, header_map.get("content-type", "")),
        "raw_body": body.decode("utf-8", errors="replace"),
        "headers": header_map,
        "query": _one_or_list(query),
        "method": method,
        "webhook": {"id": str(webhook_id), "name": name},
        "now": now,
    }


class _Sample:
    """Any value of a sample request: every attribute, item or call is another sample,
    it renders as `0`, iterates as empty, and compares false; so that a template can be
    tried at create time without knowing what senders will post."""

    def __getattr__(self, name: str) -> _Sample:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: object) -> _Sample:
        return self

    def __call__(self, *args: object, **kwargs: object) -> _Sample:
        return self

    def __str__(self) -> str:
        return "0"

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return False

    def __contains__(self, item: object) -> bool:
        return False

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def _same(self, *args: object) -> _Sample:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __neg__ = __round__ = _same


def sample_context(webhook_id: uuid.UUID, name: str) -> dict[str, Any]:
    """A context like `request_context`'s, whose request values are all samples."""
    sample = _Sample()
    return {
        "body": sample,
        "raw_body": "0",
        "headers": sample,
        "query": sample,
        "method": "POST",
        "webhook": {"id": str(webhook_id), "name": name},
        "now": dt.datetime.now(dt.UTC),
    }


# -- rendering -------------------------------------------------------------------------------


def webhook_resource(webhook_id: uuid.UUID, name: str) -> dict[str, str]:
    """The related resource the server adds to every event of this webhook."""
    return {
        RESOURCE_ID: f"headwater.webhook.{webhook_id}",
        RESOURCE_ROLE: "webhook",
        RESOURCE_NAME: name,
    }


def _problems(exc: ValidationError) -> str:
    from headwater.server.errors import validation_details

    shown = []
    for detail in validation_details(exc.errors())[:5]:
        where = ".".join(str(part) for part in detail["loc"])
        shown.append(f"{where}: {detail['msg']}" if where else str(detail["msg"]))
    return "; ".join(shown)


def _document(template: str, context: dict[str, Any]) -> dict[str, Any]:
    """The template rendered and parsed: a JSON object, else WebhookRequestError."""
    from headwater.server.templating import TemplateError, render

    try:
        text = render(template, context, "webhook's template")
    except TemplateError as exc:
        raise WebhookRequestError(str(exc)) from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise WebhookRequestError(
            f"The webhook's template did not render JSON ({exc}); it rendered: "
            f"{text[:200]!r}{'...' if len(text) > 200 else ''}"
        ) from None
    if not isinstance(document, dict):
        raise WebhookRequestError(
            "The webhook's template must render a JSON object with at least 'event' and "
            f"'resource', not a {type(document).__name__}."
        )
    return document


def render_event(template: str, context: dict[str, Any], webhook_id: uuid.UUID, name: str) -> Event:
    """The event the template makes of the request `context`, with the webhook related.

    Raises:
        WebhookRequestError: the template failed, or did not render a valid event.
    """
    document = _document(template, context)
    related = document.get("related", [])
    if isinstance(related, list):
        document["related"] = [*related, webhook_resource(webhook_id, name)]
    try:
        return Event.model_validate(document)
    except ValidationError as exc:
        raise WebhookRequestError(
            f"The webhook's template rendered an invalid event: {_problems(exc)}"
        ) from None


def _refuse_private_access(template: str) -> None:
    """Refuse `x._name` and `x["_name"]`: the sandbox renders them as empty text, silently;
    an author should hear at once that they are not allowed."""
    from jinja2 import Environment, nodes

    for node in Environment().parse(template).find_all((nodes.Getattr, nodes.Getitem)):
        name: object = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        if isinstance(name, str) and name.startswith("_"):
            raise ValueError(
                f"The webhook's template did something not allowed: it reads {name!r} (line "
                f"{node.lineno}); attributes and keys starting with '_' are not available to "
                "templates."
            )


def check_template(template: str, webhook_id: uuid.UUID, name: str) -> None:
    """Raise ValueError, saying why, if `template` cannot make events.

    It must parse, and render against a sample request (every request value
    renders as `0`) a JSON object with `event` and `resource` and no unknown
    fields. Values that depend on real requests are checked when they arrive.
    """
    from headwater.server.templating import check

    check(template, "webhook's template")
    _refuse_private_access(template)
    try:
        document = _document(template, sample_context(webhook_id, name))
    except WebhookRequestError as exc:
        raise ValueError(
            f"{exc} (tried with a sample request whose values all render as 0)"
        ) from None
    try:
        Event.model_validate(document)
    except ValidationError as exc:
        structural = [
            error for error in exc.errors() if error["type"] in ("missing", "extra_forbidden")
        ]
        if structural:
            raise ValueError(
                "The webhook's template renders an event with "
                + "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in structural)
                + ". An event needs 'event' and 'resource', and may have 'id', 'occurred', "
                "'related', 'payload' and 'follows'."
            ) from None
