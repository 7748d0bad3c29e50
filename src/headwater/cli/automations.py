"""`headwater automation ls|inspect|firings|pause|resume|delete|apply`.

Commands speak to the API through `get_client()`: the server at
HEADWATER_API_URL, or the embedded store's API in this process. An automation
is named by its name or its id.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from headwater.client.api import ApiClient

HELP = (
    "Manage automations: list, inspect, pause, resume and delete them, see their firings, "
    "and apply them from a YAML file."
)

#: Firings `inspect` shows.
INSPECT_FIRINGS = 5

AutomationArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME|ID",
        help="The automation's name (as `headwater automation ls` shows) or its id.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (as the API returns it) instead.")
]


def resolve_automation(client: ApiClient, name_or_id: str) -> dict[str, Any]:
    """The automation with this id, or else this name (an id-like name is looked up too)."""
    from headwater.exceptions import ObjectNotFound

    try:
        automation_id = uuid.UUID(name_or_id)
    except ValueError:
        automation_id = None
    if automation_id is not None:
        try:
            found: dict[str, Any] = client.request("GET", f"/automations/{automation_id}")
            return found
        except ObjectNotFound:
            pass
    try:
        found = client.request("GET", f"/automations/name/{quote(name_or_id, safe='')}")
    except ObjectNotFound:
        raise ObjectNotFound(
            f"No automation named {name_or_id!r}; `headwater automation ls` lists them."
        ) from None
    return found


def _console() -> Console:
    from headwater.cli.output import console

    return console()


def _local(text: str | None) -> str:
    from headwater.cli.output import local_time

    if text is None:
        return "-"
    return local_time(dt.datetime.fromisoformat(str(text)).timestamp())


def _status(item: dict[str, Any]) -> Text:
    from rich.text import Text

    return Text("enabled", style="green") if item["enabled"] else Text("paused", style="yellow")


def describe_trigger(trigger: dict[str, Any], indent: str = "") -> list[str]:
    """Lines describing a trigger: what it expects, how many, within how long."""
    kind = trigger.get("type")
    if kind in ("compound", "sequence"):
        head = f"{indent}{kind}"
        if kind == "compound":
            head += f" (require {trigger.get('require', 'all')})"
        if trigger.get("within"):
            head += f" within {_seconds(trigger['within'])}"
        lines = [head + ":"]
        for child in trigger.get("triggers", []):
            lines.extend(describe_trigger(child, indent + "  "))
        return lines
    if kind == "metric":
        metric = trigger.get("metric", {})
        text = (
            f"{indent}metric {metric.get('name')} {metric.get('operator')} "
            f"{metric.get('threshold')} over {_seconds(metric.get('range', 0))} "
            f"for {_seconds(metric.get('firing_for', 0))}"
        )
        return [text + _matching(trigger)]
    expect = ", ".join(sorted(trigger.get("expect") or [])) or "any event"
    posture = trigger.get("posture", "Reactive")
    threshold = trigger.get("threshold", 1)
    if posture == "Proactive":
        text = f"{indent}proactive: fewer than {threshold} of {expect}"
    else:
        text = indent + (f"{threshold} x {expect}" if threshold != 1 else expect)
    if trigger.get("within"):
        text += f" within {_seconds(trigger['within'])}"
    if trigger.get("after"):
        text += f" after {', '.join(sorted(trigger['after']))}"
    if trigger.get("for_each"):
        text += f" for each {', '.join(sorted(trigger['for_each']))}"
    return [text + _matching(trigger)]


def _matching(trigger: dict[str, Any]) -> str:
    text = ""
    if trigger.get("match"):
        text += f"; resource {json.dumps(trigger['match'])}"
    if trigger.get("match_related"):
        text += f"; related {json.dumps(trigger['match_related'])}"
    return text


def _seconds(value: Any) -> str:
    from headwater.cli.output import format_duration

    seconds = float(value)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s" if seconds < 60 else format_duration(seconds)


def describe_action(action: dict[str, Any]) -> str:
    """One line for an action: its type and what it acts on."""
    details = {key: value for key, value in action.items() if key != "type" and value}
    if details.get("source") == "selected":
        del details["source"]
    if not details:
        return str(action["type"])
    return f"{action['type']} {json.dumps(details)}"


@handle_errors
def ls(
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only automations whose name contains this text."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Only automations with this tag (repeatable: all of them)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """List automations by name, with their triggers and actions."""
    params: dict[str, Any] = {"limit": min(limit, 1000)}
    if name:
        params["name_contains"] = name
    if tag:
        params["tags"] = tag
    page = get_client().request("GET", "/automations", params=params)
    items = page["items"][:limit]
    if as_json:
        from headwater.cli.output import print_json

        print_json(items)
        return
    out = _console()
    if not items:
        out.print(
            "No automations. Create one with `headwater automation apply FILE.yaml` or "
            "Automation(...).create()."
        )
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Name", overflow="fold", min_width=6)
    table.add_column("ID", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Trigger", overflow="fold")
    table.add_column("Actions", overflow="fold")
    table.add_column("Tags", overflow="fold")
    for item in items:
        actions = [*item["actions"], *item["actions_on_trigger"], *item["actions_on_resolve"]]
        table.add_row(
            Text(item["name"]),
            str(item["id"]),
            _status(item),
            Text(" ".join(line.strip() for line in describe_trigger(item["trigger"]))),
            Text(", ".join(action["type"] for action in actions)),
            Text(", ".join(item["tags"])),
        )
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} automation{'s' if total != 1 else ''}.", style="dim")


def _firings(client: ApiClient, automation_id: str, limit: int) -> dict[str, Any]:
    page: dict[str, Any] = client.request(
        "GET", f"/automations/{automation_id}/firings", params={"limit": limit}
    )
    return page


@handle_errors
def inspect(name: AutomationArgument, as_json: JsonOption = False) -> None:
    """Show an automation: its trigger, actions and last firings with each action's outcome."""
    client = get_client()
    item = resolve_automation(client, name)
    page = _firings(client, item["id"], INSPECT_FIRINGS)
    if as_json:
        from headwater.cli.output import print_json

        print_json({**item, "firings": page["items"]})
        return
    from rich.table import Table
    from rich.text import Text

    out = _console()
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold", no_wrap=True)
    details.add_column(overflow="fold")
    rows: list[tuple[str, Text]] = [
        ("Automation", Text(item["name"])),
        ("ID", Text(str(item["id"]))),
        ("Status", _status(item)),
        ("Description", Text(item.get("description") or "-")),
        ("Tags", Text(", ".join(item["tags"]) or "-")),
        ("Trigger", Text("\n".join(describe_trigger(item["trigger"])))),
        ("Created", Text(_local(item.get("created")))),
        ("Updated", Text(_local(item.get("updated")))),
    ]
    for label, value in rows:
        details.add_row(label, value)
    out.print(details)
    for key, title in (
        ("actions", "Actions"),
        ("actions_on_trigger", "Actions on trigger"),
        ("actions_on_resolve", "Actions on resolve"),
    ):
        if item[key]:
            out.print(f"\n[bold]{title}[/bold]")
            for position, action in enumerate(item[key], 1):
                out.print(Text(f"{position}. {describe_action(action)}"))
    out.print("\n[bold]Last firings[/bold]")
    _print_firings(out, page, name=item["name"])


def _print_firings(out: Console, page: dict[str, Any], *, name: str) -> None:
    from rich.table import Table
    from rich.text import Text

    items = page["items"]
    if not items:
        out.print(f"Automation {name!r} has not fired yet.", style="dim")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Occurred", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("Key", overflow="fold")
    table.add_column("Actions", overflow="fold")
    for firing in items:
        outcomes = Text()
        for action in firing.get("actions") or []:
            if outcomes:
                outcomes.append("\n")
            outcomes.append(_action_outcome(action))
        table.add_row(
            _local(firing.get("occurred")),
            Text(str(firing.get("state", "-"))),
            # The bucket's for_each values ("[]" when the trigger has no for_each).
            Text("-" if firing.get("bucket_key") in (None, "", "[]") else firing["bucket_key"]),
            outcomes or Text("-"),
        )
    out.print(table)
    total = page.get("total", len(items))
    out.print(f"\n{len(items)} of {total} firing{'s' if total != 1 else ''}.", style="dim")


_OUTCOME_STYLES = {"COMPLETED": "green", "FAILED": "red", "PENDING": "yellow", "RUNNING": "blue"}


def _action_outcome(action: dict[str, Any]) -> Text:
    from rich.text import Text

    body = action.get("action") or {}
    state = str(action.get("state", "?"))
    text = Text(f"{body.get('type', 'action')}: ")
    text.append(state, style=_OUTCOME_STYLES.get(state, ""))
    detail = action.get("error") if state == "FAILED" else action.get("result")
    if detail:
        shown = detail if isinstance(detail, str) else json.dumps(detail)
        text.append(f" ({shown if len(shown) <= 120 else shown[:117] + '...'})", style="dim")
    return text


@handle_errors
def firings(
    name: AutomationArgument,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List an automation's firings, newest first, with each action's outcome."""
    client = get_client()
    item = resolve_automation(client, name)
    page = _firings(client, item["id"], min(limit, 1000))
    if as_json:
        from headwater.cli.output import print_json

        print_json(page["items"])
        return
    _print_firings(_console(), page, name=item["name"])


def _set_enabled(name: str, enabled: bool) -> None:
    client = get_client()
    item = resolve_automation(client, name)
    client.request("PATCH", f"/automations/{item['id']}", json={"enabled": enabled})
    verb = "Resumed" if enabled else "Paused"
    _console().print(f"{verb} automation {item['name']!r}.", highlight=False, markup=False)


@handle_errors
def pause(name: AutomationArgument) -> None:
    """Pause an automation: it does not fire until resumed."""
    _set_enabled(name, False)


@handle_errors
def resume(name: AutomationArgument) -> None:
    """Resume a paused automation."""
    _set_enabled(name, True)


@handle_errors
def delete(
    name: AutomationArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an automation (its firings go with it)."""
    client = get_client()
    item = resolve_automation(client, name)
    if not yes and not typer.confirm(f"Delete automation {item['name']!r}?", default=False):
        from headwater.cli.output import fail

        fail("Nothing deleted.")
    client.request("DELETE", f"/automations/{item['id']}")
    _console().print(f"Deleted automation {item['name']!r}.", highlight=False, markup=False)


@handle_errors
def apply(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A YAML file with `automations:` (a list), or one automation.",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the file and say what would change; store nothing."),
    ] = False,
) -> None:
    """Create or update the automations of a YAML file, by name (all are checked first)."""
    from rich.text import Text

    from headwater.cli.automation_file import apply_automation, read_automation_file
    from headwater.exceptions import HeadwaterError

    entries = read_automation_file(path)
    client = get_client()
    out = _console()
    styles = {"created": "green", "updated": "yellow", "unchanged": "dim"}
    prefix = "would be " if dry_run else ""
    for entry in entries:
        try:
            outcome = apply_automation(client, entry.automation, dry_run=dry_run)
        except HeadwaterError as exc:
            raise HeadwaterError(
                f"Automation {entry.name!r} (automations[{entry.index}]) was not applied "
                f"(those above it were): {exc}"
            ) from None
        out.print(Text.assemble(f"{entry.name}: ", (f"{prefix}{outcome}", styles[outcome])))
    if dry_run:
        out.print("Dry run: nothing was stored.", style="dim")


def register(app: typer.Typer) -> None:
    """Add the `automation` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("ls")(ls)
    group.command("inspect")(inspect)
    group.command("firings")(firings)
    group.command("pause")(pause)
    group.command("resume")(resume)
    group.command("delete")(delete)
    group.command("apply")(apply)
    app.add_typer(group, name="automation")
