"""`headwater event ...`: list, emit and follow events.

Commands speak to the API through `get_client()`: the server at
HEADWATER_API_URL, or the embedded store's API in this process.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

HELP = "Events: list them, emit one, or follow them as they arrive."

EventOption = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        help="Event name, exact or a prefix ending in '*' (headwater.flow-run.*); repeatable.",
    ),
]
ResourceOption = Annotated[
    list[str] | None,
    typer.Option("--resource", help="Resource id, exact or a prefix ending in '*'; repeatable."),
]
RelatedOption = Annotated[
    list[str] | None,
    typer.Option("--related", help="Id of a related resource (exact); repeatable."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (as the API returns it).")]


def _filter(
    event: list[str] | None,
    resource: list[str] | None,
    related: list[str] | None,
    since: str | None,
) -> dict[str, Any]:
    from headwater.cli.parsing import parse_time

    body: dict[str, Any] = {}
    if event:
        body["event"] = event
    if resource:
        body["resource_id"] = resource
    if related:
        body["related_id"] = related
    if since:
        body["since"] = parse_time(since, "--since")
    return body


def _row(item: dict[str, Any]) -> tuple[str, str, str, str]:
    import datetime as dt

    from headwater.cli.output import local_time

    occurred = dt.datetime.fromisoformat(item["occurred"]).timestamp()
    resource = item["resource"]
    name = resource.get("headwater.resource.name")
    shown = resource["headwater.resource.id"] + (f" ({name})" if name else "")
    return local_time(occurred, millis=True), item["event"], shown, item["id"]


@handle_errors
def ls(
    event: EventOption = None,
    resource: ResourceOption = None,
    related: RelatedOption = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only events since: 30m, 1h, 2d, or an ISO date/time."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List events, newest first."""
    body = _filter(event, resource, related, since) | {"limit": min(limit, 1000)}
    page = get_client().request("POST", "/events/filter", json=body)
    items = page["events"]
    if as_json:
        from headwater.cli.output import print_json

        print_json(items)
        return
    from rich.table import Table
    from rich.text import Text

    from headwater.cli.output import console

    out = console()
    if not items:
        out.print("No events match.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Occurred", no_wrap=True)
    table.add_column("Event", overflow="fold")
    table.add_column("Resource", overflow="fold")
    table.add_column("Id", no_wrap=True)
    for item in items:
        occurred, name, shown, event_id = _row(item)
        table.add_row(occurred, Text(name), Text(shown), event_id)
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} event{'s' if total != 1 else ''}.", style="dim")


@handle_errors
def emit(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The event's name.")],
    resource_id: Annotated[
        str, typer.Option("--resource-id", help="The resource's id (headwater.resource.id).")
    ],
    resource_label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Another resource label, KEY=VALUE; repeatable."),
    ] = None,
    payload: Annotated[
        str | None, typer.Option("--payload", help="The payload, a JSON object.")
    ] = None,
) -> None:
    """Send one event to the server (or the embedded store) at once."""
    from headwater.cli.output import fail

    resource = {"headwater.resource.id": resource_id}
    for label in resource_label or []:
        key, equals, value = label.partition("=")
        if not equals or not key:
            fail(f"Invalid --label {label!r}; use KEY=VALUE, e.g. --label env=prod.")
        resource[key] = value
    body: dict[str, Any] = {"event": name, "resource": resource}
    if payload is not None:
        try:
            body["payload"] = json.loads(payload)
        except ValueError as exc:
            fail(f"Invalid --payload {payload[:80]!r}: not JSON ({exc}). Use e.g. '{{\"a\": 1}}'.")
    from headwater.schemas.events import Event

    try:
        event = Event.model_validate(body)
    except ValueError as exc:
        fail(f"Invalid event: {exc}")
    get_client().request("POST", "/events", json=[event.model_dump(mode="json")])
    from headwater.cli.output import console

    console().print(f"Emitted {name!r} ({event.id}).", highlight=False, markup=False)


@handle_errors
def stream(
    event: EventOption = None,
    resource: ResourceOption = None,
    related: RelatedOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each event as one JSON line.")] = (
        False
    ),
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between looks for new events.")
    ] = 1.0,
) -> None:
    """Print events as they arrive, until Ctrl-C."""
    from headwater.cli.output import console, note

    client = get_client()
    body = _filter(event, resource, related, None)
    out = console()
    seen: dict[str, float] = {}
    since = time.time()
    note("Following events; Ctrl-C stops.")
    try:
        while True:
            # Events are read by occurred time, a little back so that late ones are
            # not missed; ids already printed are skipped.
            query = body | {"since": since - 60, "order": "asc", "limit": 1000}
            items = client.request("POST", "/events/filter", json=query)["events"]
            for item in items:
                if item["id"] in seen:
                    continue
                seen[item["id"]] = time.time()
                if as_json:
                    typer.echo(json.dumps(item))
                else:
                    occurred, name, shown, _ = _row(item)
                    out.print(f"{occurred}  {name}  {shown}", highlight=False, markup=False)
            cutoff = time.time() - 600
            seen = {k: v for k, v in seen.items() if v >= cutoff}
            if len(items) < 1000:
                time.sleep(interval)
            else:
                since = max(since, _occurred(items[-1]) - 60)
    except KeyboardInterrupt:
        return


def _occurred(item: dict[str, Any]) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(item["occurred"]).timestamp()


def register(app: typer.Typer) -> None:
    """Add the `event` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("ls")(ls)
    group.command("emit")(emit)
    group.command("stream")(stream)
    app.add_typer(group, name="event")
