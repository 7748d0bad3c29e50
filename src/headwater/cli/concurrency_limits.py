"""`headwater concurrency-limit ...`: create, list, inspect, update, reset and delete limits.

Commands speak to the API through `getget_client()`: the server at
HEADWATER_API_URL, or the embedded store's API in this process. Module-level
imports stay light (typer and the standard library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

if TYPE_CHECKING:
    from rich.text import Text

HELP = (
    "Manage global concurrency limits and rate limits. A limit named tag:TAG (e.g. tag:db) "
    "also limits task runs: each running task run tagged TAG holds one of its slots."
)

LimitName = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The limit's name; tag:TAG for the limit of task runs tagged TAG.",
        show_default=False,
    ),
]
DecayOption = Annotated[
    float | None,
    typer.Option(
        "--slot-decay-per-second",
        min=0,
        metavar="RATE",
        help="Slots freed per second, continuously; a limit with decay is a rate limit "
        "(what rate_limit() needs). 0 for none.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (as the API returns it) instead.")
]


def _path(name: str) -> str:
    from urllib.parse import quote

    return f"/concurrency_limits/{quote(name, safe='')}"


@handle_errors
def create(
    name: LimitName,
    limit: Annotated[
        int,
        typer.Argument(
            min=0,
            metavar="LIMIT",
            help="How many slots (0 refuses everything).",
            show_default=False,
        ),
    ],
    slot_decay_per_second: DecayOption = None,
    inactive: Annotated[
        bool,
        typer.Option("--inactive", help="Create it inactive: it blocks nothing until activated."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a concurrency limit NAME with LIMIT slots.

    Name it tag:TAG to limit the task runs tagged TAG, e.g.
    `headwater concurrency-limit create tag:db 2`.
    """
    body = {"name": name, "limit": limit, "active": not inactive}
    if slot_decay_per_second is not None:
        body["slot_decay_per_second"] = slot_decay_per_second
    created = get_client().request("POST", "/concurrency_limits", json=body)
    if as_json:
        _print_json(created)
        return
    from headwater.cli.output import console

    decay = created["slot_decay_per_second"]
    rate = f", freeing {decay:g} slot(s) per second" if decay else ""
    state = "" if created["active"] else " (inactive)"
    console().print(
        f"Created concurrency limit {created['name']!r} with {created['limit']} slot(s)"
        f"{rate}{state}.",
        highlight=False,
        markup=False,
    )


@handle_errors
def ls(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """List concurrency limits by name, with the slots taken now."""
    page = get_client().request("GET", "/concurrency_limits", params={"limit": min(limit, 1000)})
    items = page["items"][:limit]
    if as_json:
        _print_json(items)
        return
    from headwater.cli.output import console

    out = console()
    if not items:
        out.print("No concurrency limits. Create one with `headwater concurrency-limit create`.")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Name", overflow="fold", min_width=6)
    table.add_column("Taken", justify="right", no_wrap=True)
    table.add_column("Limit", justify="right", no_wrap=True)
    table.add_column("Decay/s", justify="right", no_wrap=True)
    table.add_column("Active", no_wrap=True)
    for item in items:
        table.add_row(
            Text(item["name"]),
            _taken(item),
            str(item["limit"]),
            _decay(item["slot_decay_per_second"]),
            _active(item["active"]),
        )
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} limit{'s' if total != 1 else ''}.", style="dim")


@handle_errors
def inspect(name: LimitName, as_json: JsonOption = False) -> None:
    """Show a concurrency limit and the leases holding its slots."""
    client = get_client()
    item = client.request("GET", _path(name))
    leases = client.request("GET", _path(name) + "/leases")
    if as_json:
        _print_json({**item, "leases": leases})
        return
    from rich.table import Table
    from rich.text import Text

    from headwater.cli.output import console

    out = console()
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold", no_wrap=True)
    details.add_column()
    for label, value in (
        ("Concurrency limit", Text(item["name"])),
        ("ID", Text(item["id"])),
        ("Active", _active(item["active"])),
        ("Slots taken", _taken(item)),
        ("Limit", Text(str(item["limit"]))),
        ("Slot decay", Text(_decay_text(item["slot_decay_per_second"]))),
        ("Created", Text(_local(item["created"]))),
        ("Updated", Text(_local(item["updated"]))),
    ):
        details.add_row(label, value)
    out.print(details)
    if not leases:
        out.print("\nNo leases hold slots of this limit.", style="dim")
        return
    table = Table(box=None, pad_edge=False, header_style="bold", title_justify="left")
    table.add_column("Lease", no_wrap=True)
    table.add_column("Slots", justify="right")
    table.add_column("Holder", overflow="fold")
    table.add_column("Expires", no_wrap=True)
    for lease in leases:
        holder = lease["holder"] or {}
        table.add_row(
            lease["id"],
            str(lease["slots"]),
            Text(" ".join(f"{key}={value}" for key, value in holder.items()) or "-"),
            _local(lease["expires"]),
        )
    out.print()
    out.print(table)


@handle_errors
def update(
    name: LimitName,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=0, help="The new number of slots.", show_default=False),
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive",
            help="Activate the limit, or deactivate it (an inactive limit blocks nothing).",
            show_default=False,
        ),
    ] = None,
    slot_decay_per_second: DecayOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a concurrency limit's slots, active flag or slot decay; held slots stay held."""
    body: dict[str, Any] = {}
    if limit is not None:
        body["limit"] = limit
    if active is not None:
        body["active"] = active
    if slot_decay_per_second is not None:
        body["slot_decay_per_second"] = slot_decay_per_second
    if not body:
        from headwater.cli.output import fail

        fail("Nothing to change: give --limit, --active/--inactive or --slot-decay-per-second.")
    item = get_client().request("PATCH", _path(name), json=body)
    if as_json:
        _print_json(item)
        return
    from headwater.cli.output import console

    console().print(
        f"Updated concurrency limit {item['name']!r}: {item['limit']} slot(s), "
        f"{_decay_text(item['slot_decay_per_second'])}, "
        f"{'active' if item['active'] else 'inactive'}.",
        highlight=False,
        markup=False,
    )


@handle_errors
def reset(name: LimitName) -> None:
    """Free all slots of a concurrency limit (its current holders no longer count)."""
    item = get_client().request("POST", _path(name) + "/reset")
    from headwater.cli.output import console

    console().print(
        f"Reset concurrency limit {item['name']!r}: 0 of {item['limit']} slot(s) taken.",
        highlight=False,
        markup=False,
    )


@handle_errors
def delete(name: LimitName) -> None:
    """Delete a concurrency limit."""
    get_client().request("DELETE", _path(name))
    from headwater.cli.output import console

    console().print(f"Deleted concurrency limit {name!r}.", highlight=False, markup=False)


def _taken(item: dict[str, Any]) -> Text:
    from rich.text import Text

    taken = float(item["active_slots"])
    text = f"{taken:.2f}".rstrip("0").rstrip(".") if item["slot_decay_per_second"] else f"{taken:g}"
    full = item["active"] and taken >= item["limit"]
    return Text(text, style="red" if full else "")


def _decay(value: float) -> str:
    return f"{value:g}" if value else "-"


def _decay_text(value: float) -> str:
    return f"{value:g} slot(s) freed per second" if value else "no slot decay"


def _active(active: bool) -> Text:
    from rich.text import Text

    return Text("yes" if active else "no", style="" if active else "yellow")


def _local(iso: str) -> str:
    import datetime as dt

    from headwater.cli.output import local_time

    return local_time(dt.datetime.fromisoformat(iso).timestamp())


def _print_json(value: Any) -> None:
    from headwater.cli.output import print_json

    print_json(value)


def register(app: typer.Typer) -> None:
    """Add the `concurrency-limit` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("create")(create)
    group.command("ls")(ls)
    group.command("inspect")(inspect)
    group.command("update")(update)
    group.command("reset")(reset)
    group.command("delete")(delete)
    app.add_typer(group, name="concurrency-limit")
