"""`headwater variable ...`: list, read, set and unset variables (named JSON values).

Commands speak to the API through `getget_client()`: the server at
HEADWATER_API_URL, or the embedded store's API in this process.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

HELP = "Manage variables: named JSON values for configuration (Variable.get / Variable.set)."

NameArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The variable's name: lowercase letters, digits, underscores and dashes.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (as the API returns it) instead.")
]


def _path(name: str) -> str:
    from urllib.parse import quote

    return f"/variables/{quote(name, safe='')}"


def parse_value(text: str) -> Any:
    """VALUE as JSON when it parses as JSON, else the text itself (a string)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@handle_errors
def ls(
    contains: Annotated[
        str | None,
        typer.Option("--name", help="Only variables whose name contains this text."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Only variables with this tag (repeatable: all of them)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """List variables by name, with their values."""
    params: dict[str, Any] = {"limit": min(limit, 1000)}
    if contains:
        params["name_contains"] = contains
    if tag:
        params["tags"] = tag
    page = get_client().request("GET", "/variables", params=params)
    items = page["items"][:limit]
    if as_json:
        from headwater.cli.output import print_json

        print_json(items)
        return
    from rich.table import Table
    from rich.text import Text

    from headwater.cli.output import console, local_time

    out = console()
    if not items:
        out.print("No variables. Set one with `headwater variable set NAME VALUE`.")
        return
    import datetime as dt

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Name", overflow="fold", min_width=6)
    table.add_column("Value", overflow="fold")
    table.add_column("Tags", overflow="fold")
    table.add_column("Updated", no_wrap=True)
    for item in items:
        text = json.dumps(item["value"])
        table.add_row(
            Text(item["name"]),
            Text(text if len(text) <= 80 else text[:77] + "..."),
            Text(", ".join(item["tags"])),
            local_time(dt.datetime.fromisoformat(item["updated"]).timestamp()),
        )
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} variable{'s' if total != 1 else ''}.", style="dim")


@handle_errors
def get(name: NameArgument, as_json: JsonOption = False) -> None:
    """Print a variable's value: a string as it is, any other value as JSON."""
    item = get_client().request("GET", _path(name))
    if as_json:
        from headwater.cli.output import print_json

        print_json(item)
        return
    typer.echo(_shown(item["value"]))


@handle_errors
def set_(
    name: NameArgument,
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help="The value, as JSON when it parses (42, true, '{\"a\": 1}', '\"42\"' for the "
            "string), else as a string.",
            show_default=False,
        ),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the value if the variable exists.")
    ] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="A tag for the variable (repeatable); replaces its tags."),
    ] = None,
) -> None:
    """Set a variable NAME to VALUE (an error if it exists, unless --overwrite)."""
    parsed = parse_value(value)
    client = get_client()
    if overwrite:
        client.request("PUT", _path(name), json={"value": parsed, "tags": tag or None})
    else:
        client.request(
            "POST", "/variables", json={"name": name, "value": parsed, "tags": tag or []}
        )
    from headwater.cli.output import console

    console().print(
        f"Set variable {name!r} to {json.dumps(parsed)[:200]}.", highlight=False, markup=False
    )


@handle_errors
def unset(name: NameArgument) -> None:
    """Delete a variable."""
    get_client().request("DELETE", _path(name))
    from headwater.cli.output import console

    console().print(f"Unset variable {name!r}.", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add the `variable` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("ls")(ls)
    group.command("get")(get)
    group.command("set")(set_)
    group.command("unset")(unset)
    app.add_typer(group, name="variable")
