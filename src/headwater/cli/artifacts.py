"""`headwater artifact ...`: list artifacts, show one (by key or id), delete one.

Commands speak to the API through `getget_client()`: the server at
HEADWATER_API_URL, or the embedded store's API in this process. Module-level
imports stay light (typer and the standard library).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

if TYPE_CHECKING:
    from rich.console import RenderableType

HELP = (
    "List, show and delete the artifacts runs publish (markdown, tables, links, images, "
    "progress). Artifacts with one key are versions of one artifact."
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (as the API returns it) instead.")
]
_UUID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
#: Characters of an artifact's content shown in a listing.
_SUMMARY_LENGTH = 60


@handle_errors
def ls(
    key: Annotated[
        str | None,
        typer.Option("--key", metavar="KEY", help="Only versions of this key.", show_default=False),
    ] = None,
    flow_run: Annotated[
        str | None,
        typer.Option(
            "--flow-run",
            metavar="ID",
            help="Only artifacts this flow run published, every version (an id or id prefix).",
            show_default=False,
        ),
    ] = None,
    all_versions: Annotated[
        bool,
        typer.Option("--all-versions", help="Every version of each key, not only the latest."),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List artifacts, newest first: the latest version of each key, and those without a key."""
    client = get_client()
    params: dict[str, Any] = {"limit": min(limit, 1000)}
    if key is not None:
        params["key"] = key
    if flow_run is not None:
        params["flow_run_id"] = _flow_run_id(client, flow_run)
    params["latest_only"] = not (all_versions or flow_run is not None)
    page = client.request("GET", "/artifacts", params=params)
    items = page["items"][:limit]
    if as_json:
        _print_json(items)
        return
    from headwater.cli.output import console

    out = console()
    if not items:
        out.print("No artifacts. Runs publish them with headwater.artifacts.create_*_artifact().")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("Key", overflow="fold")
    table.add_column("Type", no_wrap=True)
    table.add_column("Content", overflow="ellipsis", max_width=_SUMMARY_LENGTH)
    table.add_column("Flow run", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    for item in items:
        table.add_row(
            item["id"],
            Text(item["key"] or "-"),
            item["type"],
            Text(summary(item)),
            _short(item["flow_run_id"]),
            _local(item["created"]),
        )
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} artifact{'s' if total != 1 else ''}.", style="dim")


@handle_errors
def inspect(
    key_or_id: Annotated[
        str,
        typer.Argument(
            metavar="KEY_OR_ID",
            help="An artifact's key (shows its latest version) or the id of one version.",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Show an artifact: its details and its content (a table as a table, progress as %)."""
    client = get_client()
    if _UUID.fullmatch(key_or_id):
        item = client.request("GET", f"/artifacts/{key_or_id}")
    else:
        item = client.request("GET", f"/artifacts/latest/{_key_path(key_or_id)}")
    versions = None
    if item["key"] is not None:
        versions = client.request("GET", "/artifacts", params={"key": item["key"], "limit": 1})
    if as_json:
        _print_json(item)
        return
    from rich.table import Table
    from rich.text import Text

    from headwater.cli.output import console

    out = console()
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold", no_wrap=True)
    details.add_column()
    rows: list[tuple[str, str]] = [("Artifact", item["key"] or "(no key)"), ("ID", item["id"])]
    if versions is not None:
        latest = versions["items"][0]["id"]
        which = "this is the latest" if latest == item["id"] else f"the latest is {latest}"
        rows.append(("Versions", f"{versions['total']} ({which})"))
    rows += [
        ("Type", item["type"]),
        ("Description", item["description"] or "-"),
        ("Flow run", item["flow_run_id"] or "-"),
        ("Task run", item["task_run_id"] or "-"),
        ("Created", _local(item["created"])),
        ("Updated", _local(item["updated"])),
    ]
    for label, value in rows:
        details.add_row(label, Text(value))
    out.print(details)
    out.print()
    out.print(content(item))


@handle_errors
def delete(
    artifact_id: Annotated[
        str, typer.Argument(metavar="ID", help="The id of the version to delete.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete one version of an artifact (the key's previous version becomes its latest)."""
    if not _UUID.fullmatch(artifact_id):
        from headwater.cli.output import fail

        fail(
            f"{artifact_id!r} is not an artifact id (a UUID); find ids with "
            "`headwater artifact ls --all-versions`."
        )
    client = get_client()
    item = client.request("GET", f"/artifacts/{artifact_id}")
    name = f"{item['type']} artifact {item['key']!r}" if item["key"] else f"{item['type']} artifact"
    if not yes:
        typer.confirm(f"Delete this version of the {name} ({item['id']})?", abort=True)
    client.request("DELETE", f"/artifacts/{item['id']}")
    from headwater.cli.output import console

    console().print(f"Deleted {name} {item['id']}.", highlight=False, markup=False)


# -- rendering -------------------------------------------------------------------------------


def summary(item: dict[str, Any]) -> str:
    """One line about an artifact's content, for listings."""
    data = item["data"]
    kind = item["type"]
    if kind == "progress":
        return _percent(data)
    if kind == "link":
        return f"{data.get('link_text') or data['link']} <{data['link']}>"
    if kind == "table":
        columns, rows = table_cells(data)
        return f"{len(rows)} row{'s' if len(rows) != 1 else ''} x {len(columns)} columns"
    text = str(data).strip()
    first = text.splitlines()[0] if text else ""
    return first + (" ..." if len(text) > len(first) else "")


def content(item: dict[str, Any]) -> RenderableType:
    """An artifact's content for `inspect`: text, a table, a link, a URL or a bar."""
    from rich.text import Text

    data = item["data"]
    kind = item["type"]
    if kind == "table":
        from rich.table import Table

        columns, rows = table_cells(data)
        table = Table(header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        return table
    if kind == "progress":
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=100, completed=float(data), width=40), _percent(data))
        return bar
    if kind == "link":
        text = Text(data.get("link_text") or data["link"], style=f"link {data['link']}")
        return Text.assemble(text, f" <{data['link']}>")
    if kind == "image":
        return Text(f"Image: {data}")
    return Text(str(data))


def table_cells(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A table artifact's column names (numbers when it has none) and rows."""
    rows: list[list[Any]] = data["rows"]
    width = max((len(row) for row in rows), default=0)
    columns = data["columns"]
    if columns is None:
        columns = [str(number) for number in range(width)]
    return list(columns), [row + [None] * (len(columns) - len(row)) for row in rows]


def _percent(progress: float) -> str:
    return f"{float(progress):g}%"


# -- helpers ---------------------------------------------------------------------------------


def _flow_run_id(client: Any, id_or_prefix: str) -> str:
    """A flow run's full id from an id or a prefix that `headwater flow-run ls` shows."""
    if _UUID.fullmatch(id_or_prefix):
        return id_or_prefix
    if not re.fullmatch(r"[0-9a-fA-F-]{1,36}", id_or_prefix):
        from headwater.cli.output import fail

        fail(
            f"--flow-run {id_or_prefix!r} is not a flow run id or id prefix (hexadecimal "
            "digits, e.g. 0193a1b2-c3d4); list flow runs with `headwater flow-run ls`."
        )
    from urllib.parse import quote

    found: str = client.request("GET", f"/flow_runs/by_prefix/{quote(id_or_prefix, safe='')}")["id"]
    return found


def _key_path(key: str) -> str:
    from urllib.parse import quote

    return quote(key, safe="")


def _short(flow_run_id: str | None) -> str:
    if flow_run_id is None:
        return "-"
    from headwater.cli.output import SHORT_ID_LENGTH

    return flow_run_id[:SHORT_ID_LENGTH]


def _local(iso: str) -> str:
    import datetime as dt

    from headwater.cli.output import local_time

    return local_time(dt.datetime.fromisoformat(iso).timestamp())


def _print_json(value: Any) -> None:
    from headwater.cli.output import print_json

    print_json(value)


def register(app: typer.Typer) -> None:
    """Add the `artifact` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("ls")(ls)
    group.command("inspect")(inspect)
    group.command("delete")(delete)
    app.add_typer(group, name="artifact")
