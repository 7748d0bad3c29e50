"""UI pages: automations (list, one automation with its firings, create and edit).

The pages read through the REST API; the browser creates, replaces, pauses, resumes and
deletes automations through it too (`static/automations.js`), so the API's validation
messages are what the form shows.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from headwater.ui.api import Api, ApiError
from headwater.ui.pages.events import resource_link
from headwater.ui.render import page

router = APIRouter()

PAGE_SIZE = 50
FIRINGS_PAGE_SIZE = 20
#: The most deployments and work pools the form offers in its selects.
CHOICES_LIMIT = 1000

_STATE_PILLS = {"COMPLETED": "pill-ok", "FAILED": "pill-bad"}

#: Deployment id -> "flow/name", for the actions that name deployments by id.
Names = dict[str, str]


def seconds_text(value: float | None) -> str:
    """60 -> "1 min", 5400 -> "1.5 h": a window as people say it."""
    if value is None:
        return "-"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if value >= size:
            amount = value / size
            return f"{amount:g} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{value:g} s"


def _names(values: Any) -> str:
    items = sorted(values or [])
    return ", ".join(items) if items else "any event"


def _labels(specification: Any) -> str:
    """{"a": "x", "b": ["y", "z"]} -> "a = x, b = y or z"."""
    if not isinstance(specification, dict):
        return str(specification)
    parts = []
    for label, patterns in specification.items():
        shown = patterns if isinstance(patterns, str) else " or ".join(map(str, patterns))
        parts.append(f"{label} = {shown}")
    return ", ".join(parts)


def describe_trigger(trigger: dict[str, Any]) -> str:
    """A trigger as one sentence, e.g. "When headwater.flow-run.Failed occurs"."""
    kind = trigger.get("type", "event")
    if kind == "metric":
        metric = trigger.get("metric") or {}
        text = (
            f"When the {metric.get('name')} of matching flow runs is {metric.get('operator')} "
            f"{metric.get('threshold')} over the last {seconds_text(metric.get('range'))} for "
            f"{seconds_text(metric.get('firing_for'))}"
        )
        return text + _matching(trigger)
    if kind in ("compound", "sequence"):
        children = "; ".join(
            f"({describe_trigger(child)})" for child in trigger.get("triggers") or []
        )
        within = trigger.get("within")
        limit = f" within {seconds_text(within)}" if within else ""
        if kind == "sequence":
            return f"When these fire in order{limit}: {children}"
        require = trigger.get("require", "all")
        return f"When {require} of these fire{limit}: {children}"
    names = _names(trigger.get("expect"))
    threshold = int(trigger.get("threshold", 1))
    within = float(trigger.get("within") or 0)
    after = trigger.get("after")
    if trigger.get("posture") == "Proactive":
        text = f"When fewer than {threshold} of {names} occur within {seconds_text(within)}"
        if after:
            text += f" after {_names(after)}"
    else:
        times = "occurs" if threshold == 1 else f"occurs {threshold} times"
        text = f"When {names} {times}"
        if within and threshold > 1:
            text += f" within {seconds_text(within)}"
        if after:
            text += f", after {_names(after)}"
    if trigger.get("for_each"):
        text += f", per {', '.join(sorted(trigger['for_each']))}"
    return text + _matching(trigger)


def _matching(trigger: dict[str, Any]) -> str:
    text = ""
    if trigger.get("match"):
        text += f" on resources with {_labels(trigger['match'])}"
    related = trigger.get("match_related")
    specs = related if isinstance(related, list) else [related] if related else []
    for spec in specs:
        if spec:
            text += f" related to {_labels(spec)}"
    return text


def _target(action: dict[str, Any], *keys: str, what: str, names: Names) -> str:
    for key in keys:
        if action.get(key):
            return f"{what} {names.get(str(action[key]), action[key])}"
    return f"the event's {what}"


def _where(url: Any) -> str:
    """An apprise or webhook URL without what could be a credential: scheme and host."""
    parts = urllib.parse.urlsplit(str(url))
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}…" if parts.scheme else "…"


def describe_action(action: dict[str, Any], names: Names | None = None) -> str:
    """An action as a short phrase, e.g. "Run deployment etl/daily".

    `names` maps the deployment ids actions name to "flow/name", to show those instead.
    """
    names = names or {}
    kind = str(action.get("type", ""))
    if kind == "run-deployment":
        text = "Run " + _target(
            action, "deployment", "deployment_id", what="deployment", names=names
        )
        return text + (" with parameters" if action.get("parameters") else "")
    verb, _, noun = kind.partition("-")
    if noun == "deployment":
        return f"{verb.title()} " + _target(
            action, "deployment", "deployment_id", what=noun, names=names
        )
    if noun == "work-pool":
        return f"{verb.title()} " + _target(
            action, "work_pool", "work_pool_id", what="work pool", names=names
        )
    if noun == "work-queue":
        if action.get("work_queue"):
            return f"{verb.title()} work queue {action.get('work_pool')}/{action['work_queue']}"
        return f"{verb.title()} " + _target(action, "work_queue_id", what="work queue", names=names)
    if noun == "automation":
        if action.get("automation") or action.get("automation_id"):
            name = action.get("automation") or action.get("automation_id")
            return f"{verb.title()} automation {name}"
        return f"{verb.title()} this automation"
    if noun == "flow-run":
        return f"{verb.title()} the event's flow run"
    if kind == "change-flow-run-state":
        return f"Set the event's flow run to {action.get('state')}"
    if kind == "send-notification":
        if action.get("secret"):
            return f"Notify the URLs of secret {action['secret']}"
        urls = action.get("url")
        urls = urls if isinstance(urls, list) else [urls]
        return "Notify " + ", ".join(_where(url) for url in urls)
    if kind == "call-webhook":
        return f"Call webhook {action.get('method', 'POST')} {_where(action.get('url'))}"
    if kind == "do-nothing":
        return "Record the firing only"
    return str(kind)


def all_actions(automation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(when, action) of every action list: "" for `actions`, else when it runs."""
    found = [("", action) for action in automation.get("actions") or []]
    found += [("on trigger", a) for a in automation.get("actions_on_trigger") or []]
    found += [("on resolve", a) for a in automation.get("actions_on_resolve") or []]
    return found


def firing_view(firing: dict[str, Any], names: Names) -> dict[str, Any]:
    """A firing with what the templates show: the triggering event and action outcomes."""
    event = (firing.get("context") or {}).get("event") or {}
    resource = event.get("resource") or {}
    actions = []
    for action in firing.get("actions") or []:
        result = action.get("result")
        run_id = result.get("flow_run_id") if isinstance(result, dict) else None
        actions.append(
            {
                **action,
                "summary": describe_action(action.get("action") or {"type": action["type"]}, names),
                "pill": _STATE_PILLS.get(action["state"], "pill-warn"),
                "flow_run_id": run_id,
            }
        )
    resource_id = str(resource.get("headwater.resource.id", ""))
    return {
        **firing,
        "event_name": event.get("event"),
        "resource_id": resource_id,
        "resource_name": resource.get("headwater.resource.name"),
        "resource_href": resource_link(resource_id, resource) if resource_id else None,
        "labels": (firing.get("context") or {}).get("labels") or {},
        "action_views": actions,
    }


def automation_view(automation: dict[str, Any], names: Names) -> dict[str, Any]:
    return {
        **automation,
        "trigger_text": describe_trigger(automation["trigger"]),
        "action_texts": [
            (when, describe_action(action, names)) for when, action in all_actions(automation)
        ],
    }


async def deployment_names(api: Api, automations: list[dict[str, Any]]) -> Names:
    """ "flow/name" of each deployment the automations' actions name by id (deleted ones
    are left out, and show as their id)."""
    ids = sorted(
        {
            str(action["deployment_id"])
            for automation in automations
            for _, action in all_actions(automation)
            if action.get("deployment_id")
        }
    )

    async def name(deployment_id: str) -> str | None:
        try:
            found = await api.get(f"/deployments/{deployment_id}")
        except ApiError:
            return None
        return f"{found['flow_name']}/{found['name']}"

    found = await asyncio.gather(*(name(item) for item in ids))
    return {key: value for key, value in zip(ids, found, strict=True) if value}


def _offset(request: Request) -> int:
    try:
        return max(0, int(request.query_params.get("offset") or 0))
    except ValueError:
        return 0


def _id(automation_id: str) -> str:
    """The id as the API's path takes it; a 404 page for text that is no id at all."""
    try:
        return str(uuid.UUID(automation_id))
    except ValueError:
        raise ApiError(404, f"No automation with id {automation_id!r}.") from None


@router.get("/automations", response_class=HTMLResponse)
async def automations_page(request: Request) -> HTMLResponse:
    """Automations by name, with their trigger, actions, last firing and an on/off switch."""
    api = Api(request)
    name = request.query_params.get("name", "").strip()
    enabled = request.query_params.get("enabled", "")
    offset = _offset(request)
    found = await api.get(
        "/automations",
        name_contains=name or None,
        enabled={"on": "true", "off": "false"}.get(enabled),
        offset=offset,
        limit=PAGE_SIZE,
    )
    items = found["items"]
    latest = await asyncio.gather(
        *(api.get(f"/automations/{item['id']}/firings", limit=1) for item in items)
    )
    names = await deployment_names(api, items)
    automations = [
        {**automation_view(item, names), "last_firing": (last["items"] or [None])[0]}
        for item, last in zip(items, latest, strict=True)
    ]
    return page(
        request,
        "automations/list.html",
        automations=automations,
        total=found["total"],
        offset=offset,
        limit=PAGE_SIZE,
        name=name,
        enabled=enabled,
    )


async def _form_choices(api: Api) -> dict[str, Any]:
    deployments, pools = await asyncio.gather(
        api.get("/deployments", limit=CHOICES_LIMIT), api.get("/work_pools", limit=CHOICES_LIMIT)
    )
    return {
        "deployments": [
            {"id": item["id"], "name": f"{item['flow_name']}/{item['name']}"}
            for item in deployments["items"]
        ],
        "work_pools": [item["name"] for item in pools["items"]],
    }


@router.get("/automations/new", response_class=HTMLResponse)
async def new_automation_page(request: Request) -> HTMLResponse:
    """The form for a new automation."""
    choices = await _form_choices(Api(request))
    return page(request, "automations/form.html", automation=None, choices=choices)


@router.get("/automations/{automation_id}", response_class=HTMLResponse)
async def automation_page(request: Request, automation_id: str) -> HTMLResponse:
    """One automation: its trigger and actions, and its firings with their outcomes."""
    api = Api(request)
    automation_id = _id(automation_id)
    offset = _offset(request)
    # The page follows firings from here on (the stream's `since`), so that none made
    # while the browser connects is missed.
    rendered = time.time()
    automation, firings = await asyncio.gather(
        api.get(f"/automations/{automation_id}"),
        api.get(f"/automations/{automation_id}/firings", offset=offset, limit=FIRINGS_PAGE_SIZE),
    )
    names = await deployment_names(api, [automation])
    return page(
        request,
        "automations/detail.html",
        automation=automation_view(automation, names),
        firings=[firing_view(item, names) for item in firings["items"]],
        firings_total=firings["total"],
        rendered=f"{rendered:.3f}",
        offset=offset,
        limit=FIRINGS_PAGE_SIZE,
    )


@router.get("/automations/{automation_id}/edit", response_class=HTMLResponse)
async def edit_automation_page(request: Request, automation_id: str) -> HTMLResponse:
    """The form, filled with the automation; saving replaces it (PUT)."""
    api = Api(request)
    automation = await api.get(f"/automations/{_id(automation_id)}")
    choices = await _form_choices(api)
    return page(request, "automations/form.html", automation=automation, choices=choices)
