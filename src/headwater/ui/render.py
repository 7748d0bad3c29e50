"""Templates and the filters pages share: states, times, durations, JSON and markdown.

Every template is autoescaped, and every filter that returns markup builds it with
`Markup.format`, which escapes its arguments: text from runs, parameters, logs or
artifacts is always shown as text. Markdown is rendered with raw HTML turned off and
links limited to safe schemes.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import urllib.parse
from functools import cache
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from headwater._version import __version__

#: Top navigation: (label, path).
NAV = (
    ("Dashboard", "/"),
    ("Flow runs", "/flow-runs"),
    ("Flows", "/flows"),
    ("Deployments", "/deployments"),
    ("Work pools", "/work-pools"),
    ("Automations", "/automations"),
    ("Events", "/events"),
    ("Artifacts", "/artifacts"),
    ("Variables", "/variables"),
    ("Secrets", "/secrets"),
    ("Concurrency", "/concurrency-limits"),
)

STATE_TYPES = (
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "PAUSED",
    "CANCELLING",
    "COMPLETED",
    "FAILED",
    "CRASHED",
    "CANCELLED",
)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("headwater.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        state=state_badge,
        when=when,
        duration=duration,
        short=short_id,
        pretty=pretty_json,
        markdown=markdown,
        parse_time=parse_time,
        safe_url=safe_url,
    )
    env.globals.update(nav=NAV, state_types=STATE_TYPES, version=__version__)
    return env


#: What a page may load and run. Scripts: the package's own files, and inline scripts only
#: with the response's nonce; no framing (clickjacking); images also from http(s) and data:
#: (image artifacts); style attributes allowed (bar widths).
_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: http: https:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """The page `template` rendered with `context`, the request, the page's CSRF token and
    a fresh nonce for its inline scripts (`csp_nonce`), sent with its Content-Security-Policy."""
    keys = request.app.state.ui_keys
    nonce = secrets.token_urlsafe(16)
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            path=request.url.path,
            csrf_token=keys.csrf,
            csp_nonce=nonce,
            signed_in=keys.session is not None,
            query=query_string,
            **context,
        )
    )
    headers = {
        "content-security-policy": _CSP.format(nonce=nonce),
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }
    return HTMLResponse(html, status_code=status, headers=headers)


async def error_page(request: Request, error: Any) -> HTMLResponse:
    """The page shown when the API refused a page's request (a 404 for a missing run...)."""
    return page(
        request,
        "error.html",
        status=error.status,
        status_code=error.status,
        message=error.message,
    )


def query_string(request: Request, **changes: Any) -> str:
    """The request's query string with `changes` applied (None removes a key); "?..." or ""."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            items.extend((key, str(item)) for item in value)
        else:
            items.append((key, str(value)))
    return "?" + urllib.parse.urlencode(items) if items else "?"


def parse_time(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def state_badge(state_type: str | None, name: str | None = None) -> Markup:
    """A colored badge: the state's name, with its type as a class."""
    if not state_type:
        return Markup('<span class="state state-none">-</span>')
    return Markup('<span class="state state-{}" title="{}">{}</span>').format(
        state_type.lower(), state_type, name or state_type.title()
    )


def when(value: Any, *, absolute: bool = False) -> Markup:
    """A `<time>`: relative to now ("3 min ago", "in 2 h"), the exact time on hover.

    hw.js keeps relative times current while the page stays open.
    """
    moment = parse_time(value)
    if moment is None:
        return Markup('<span class="muted">-</span>')
    iso = moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    shown = iso.replace("T", " ") if absolute else relative(moment)
    mode = "" if absolute else " data-relative"
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(
        iso, iso.replace("T", " "), Markup(mode), shown
    )


def relative(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    seconds = ((now or dt.datetime.now(dt.UTC)) - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return "just now"  # pragma: no cover - the loop always returns


def duration(seconds: float | None) -> str:
    """1.23 s, 4m 05s, 2h 03m, 3d 04h."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def short_id(value: Any) -> str:
    """The leading 18 characters of an id, as the CLI prints them and its commands accept
    them (ids are uuid7: their first 8 characters are the same for runs a minute apart)."""
    return str(value)[:18]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str, ensure_ascii=False)


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # "html": False renders raw HTML as text; validateLink refuses javascript:, vbscript:,
    # file: and non-image data: links.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def markdown(text: str | None) -> Markup:
    """`text` rendered as markdown, with raw HTML escaped and unsafe links dropped."""
    return Markup(_markdown().render(text or ""))


_SAFE_SCHEMES = ("http", "https", "mailto", "s3", "gs", "file", "ftp")


def safe_url(value: Any, *, image: bool = False) -> str:
    """`value` if it is a link a browser may follow safely (http(s), mailto, a path...);
    "" for `javascript:`, `data:` (except images when `image`) and other schemes."""
    text = str(value or "").strip()
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if not scheme:
        return text if not text.startswith("//") else ""
    if image:
        if scheme in ("http", "https"):
            return text
        return (
            text
            if text.lower().startswith(
                ("data:image/png", "data:image/jpeg", "data:image/gif", "data:image/webp")
            )
            else ""
        )
    return text if scheme in _SAFE_SCHEMES and scheme != "file" else ""
