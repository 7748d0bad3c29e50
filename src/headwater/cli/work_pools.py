"""`headwater work-pool ...` and `headwater work-queue ...`: manage pools, queues, and see workers.

Commands speak to the REST API through `headwater.client.api.getget_client()`:
the server at HEADWATER_API_URL, else the embedded store's API in process.
Module-level imports stay light (typer); rich and the client load inside the commands.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.client.api import get_client

if TYPE_CHECKING:
    from rich.text import Text

    from headwater.client.api import ApiClient

PoolArgument = Annotated[str, typer.Argument(metavar="NAME", help="The work pool's name.")]
QueueArgument = Annotated[str, typer.Argument(metavar="NAME", help="The work queue's name.")]
PoolOption = Annotated[
    str,
    typer.Option(
        "--pool", "-p", metavar="POOL", help="The work pool of the queue.", show_default=False
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (full ids, ISO times) instead.")
]
LimitArgument = Annotated[
    int, typer.Argument(metavar="N", min=0, help="Runs that may be Pending or Running at once.")
]


def _segment(name: str) -> str:
    """A name as one URL path segment."""
    from urllib.parse import quote

    return quote(name, safe="")


def _pool_path(pool: str) -> str:
    return f"/work_pools/{_segment(pool)}"


def _queue_path(pool: str, queue: str) -> str:
    return f"{_pool_path(pool)}/queues/{_segment(queue)}"


def _epoch(text: str | None) -> float | None:
    return None if text is None else dt.datetime.fromisoformat(text).timestamp()


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def _pool_status(status: str) -> Text:
    from rich.text import Text

    style = {"READY": "green", "NOT_READY": "yellow", "PAUSED": "bright_black"}.get(status, "")
    return Text(status.replace("_", " ").lower(), style=style)


def _paused(paused: bool) -> Text:
    from rich.text import Text

    return Text("paused", style="bright_black") if paused else Text("active", style="green")


# -- work-pool -----------------------------------------------------------------------------


@handle_errors
def create_pool(
    name: PoolArgument,
    pool_type: Annotated[
        str,
        typer.Option("--type", "-t", metavar="TYPE", help="The infrastructure its runs start on."),
    ] = "process",
    concurrency_limit: Annotated[
        int | None,
        typer.Option(
            metavar="N", min=0, help="Runs of the pool that may be Pending or Running at once."
        ),
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    base_job_template: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.json",
            help="A job template of its own (see get-default-base-job-template); default: "
            "the type's.",
            dir_okay=False,
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(metavar="TEXT", help="What it is for.")] = None,
) -> None:
    """Create a work pool, with a queue named "default"."""
    from headwater.cli import output

    body: dict[str, Any] = {
        "name": name,
        "type": pool_type,
        "description": description,
        "concurrency_limit": concurrency_limit,
        "paused": paused,
    }
    if base_job_template is not None:
        body["base_job_template"] = _read_template(base_job_template)
    else:
        body["base_job_template"] = _local_default_template(pool_type)
    pool = get_client().request("POST", "/work_pools", json=body)
    out = output.console()
    out.print(f"Created work pool {pool['name']!r} of type {pool['type']!r}, with queue 'default'.")
    if pool["paused"]:
        out.print(f"It is paused: `headwater work-pool resume {pool['name']}` to start its runs.")
    out.print(f"Start a worker for it: headwater worker start --pool {pool['name']}", style="dim")


def _read_template(path: Path) -> Any:
    from headwater.cli import output

    try:
        return json.loads(path.read_text())
    except OSError as exc:
        output.fail(f"Cannot read the job template {path}: {exc.strerror or exc}.")
    except ValueError as exc:
        output.fail(f"The job template {path} is not valid JSON: {exc}.")


def _local_default_template(pool_type: str) -> dict[str, Any] | None:
    """The type's template from a plugin installed here; None lets the server decide."""
    from headwater.worker.infrastructure import UnknownInfrastructureType, default_base_job_template

    try:
        return default_base_job_template(pool_type)
    except UnknownInfrastructureType:
        return None


@handle_errors
def ls_pools(as_json: JsonOption = False) -> None:
    """List work pools."""
    from headwater.cli import output

    pools = _all_pools(get_client())
    if as_json:
        output.print_json(pools)
        return
    out = output.console()
    if not pools:
        out.print("No work pools. Create one: headwater work-pool create NAME --type process")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("Name", "Type", "Status", "Concurrency limit", "Description"):
        wrap = column in ("Name", "Description")
        table.add_column(column, overflow="fold" if wrap else "ellipsis")
    for pool in pools:
        table.add_row(
            Text(pool["name"]),
            Text(pool["type"]),
            _pool_status(pool["status"]),
            _limit(pool["concurrency_limit"]),
            Text(pool["description"] or ""),
        )
    out.print(table)


def _all_pools(client: ApiClient) -> list[dict[str, Any]]:
    pools: list[dict[str, Any]] = []
    while True:
        page = client.request("GET", "/work_pools", params={"offset": len(pools), "limit": 1000})
        pools.extend(page["items"])
        if not page["items"] or len(pools) >= page["total"]:
            return pools


@handle_errors
def inspect_pool(name: PoolArgument, as_json: JsonOption = False) -> None:
    """Show a work pool with its queues and workers."""
    from headwater.cli import output

    client = get_client()
    pool = client.request("GET", _pool_path(name))
    queues = client.request("GET", f"{_pool_path(name)}/queues")
    workers = client.request("GET", f"{_pool_path(name)}/workers")
    if as_json:
        output.print_json(pool | {"queues": queues, "workers": workers})
        return
    from rich.table import Table
    from rich.text import Text

    out = output.console()
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold", no_wrap=True)
    details.add_column()
    for label, value in (
        ("Work pool", Text(pool["name"])),
        ("ID", Text(pool["id"])),
        ("Type", Text(pool["type"])),
        ("Status", _pool_status(pool["status"])),
        ("Concurrency limit", Text(_limit(pool["concurrency_limit"]))),
        ("Description", Text(pool["description"] or "-")),
        ("Created", Text(output.local_time(_epoch(pool["created"])))),
    ):
        details.add_row(label, value)
    out.print(details)
    variables = pool["base_job_template"].get("variables", {}).get("properties", {})
    out.print(
        f"\n[bold]Job variables[/bold]: {', '.join(sorted(variables)) or '-'} "
        f"[dim](`headwater work-pool inspect {name} --json` shows the template)[/dim]"
    )

    out.print(f"\n[bold]Queues: {len(queues)}[/bold]")
    out.print(_queue_table(queues))

    out.print(f"\n[bold]Workers: {len(workers)}[/bold]")
    if not workers:
        out.print(
            Text(f"No worker has polled it yet: headwater worker start --pool {name}", style="dim")
        )
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("Name", "Status", "Last heartbeat", "Interval"):
        table.add_column(column, overflow="fold" if column == "Name" else "ellipsis")
    for worker in workers:
        online = worker["status"] == "ONLINE"
        table.add_row(
            Text(worker["name"]),
            Text(worker["status"].lower(), style="green" if online else "red"),
            _heartbeat(_epoch(worker["last_heartbeat"])),
            f"{worker['heartbeat_interval']:g}s",
        )
    out.print(table)


def _heartbeat(timestamp: float | None) -> Text:
    import time

    from rich.text import Text

    from headwater.cli import output

    if timestamp is None:
        return Text("-")
    ago = output.format_duration(max(0.0, time.time() - timestamp))
    return Text(f"{output.local_time(timestamp)} ({ago} ago)")


def _queue_table(queues: list[dict[str, Any]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("Name", "Priority", "Status", "Concurrency limit", "Description"):
        wrap = column in ("Name", "Description")
        table.add_column(column, overflow="fold" if wrap else "ellipsis")
    for queue in queues:
        table.add_row(
            Text(queue["name"]),
            str(queue["priority"]),
            _paused(queue["paused"]),
            _limit(queue["concurrency_limit"]),
            Text(queue["description"] or ""),
        )
    return table


def _patch_pool(name: str, changes: dict[str, Any], done: str) -> None:
    from headwater.cli import output

    get_client().request("PATCH", _pool_path(name), json=changes)
    output.console().print(done)


@handle_errors
def pause_pool(name: PoolArgument) -> None:
    """Pause a work pool: workers claim none of its runs until it is resumed."""
    _patch_pool(name, {"paused": True}, f"Paused work pool {name!r}.")


@handle_errors
def resume_pool(name: PoolArgument) -> None:
    """Resume a paused work pool; its due runs start at once."""
    _patch_pool(name, {"paused": False}, f"Resumed work pool {name!r}.")


@handle_errors
def set_pool_concurrency_limit(name: PoolArgument, limit: LimitArgument) -> None:
    """Limit how many runs of the pool may be Pending or Running at once."""
    _patch_pool(
        name, {"concurrency_limit": limit}, f"Work pool {name!r} runs at most {limit} at once."
    )


@handle_errors
def clear_pool_concurrency_limit(name: PoolArgument) -> None:
    """Remove the pool's concurrency limit."""
    _patch_pool(name, {"concurrency_limit": None}, f"Work pool {name!r} has no concurrency limit.")


@handle_errors
def delete_pool(
    name: PoolArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a work pool with its queues and workers; runs waiting in it are cancelled.

    Refused while deployments use the pool.
    """
    from headwater.cli import output

    client = get_client()
    client.request("GET", _pool_path(name))  # a missing pool fails before the question
    if not yes:
        typer.confirm(
            f"Delete work pool {name!r} with its queues and workers (runs waiting in it are "
            "cancelled)?",
            abort=True,
        )
    client.request("DELETE", _pool_path(name))
    output.console().print(f"Deleted work pool {name!r}.")


@handle_errors
def get_default_base_job_template(
    pool_type: Annotated[
        str, typer.Option("--type", "-t", metavar="TYPE", help="A work pool type.")
    ] = "process",
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", metavar="FILE.json", help="Write it here instead of stdout."),
    ] = None,
) -> None:
    """Print the default job template of a work pool type, to edit and pass to
    `work-pool create --base-job-template`."""
    from headwater.cli import output

    template = _local_default_template(pool_type)
    if template is None:  # a plugin the server has and this machine lacks
        from headwater.exceptions import ObjectNotFound

        types = {item["type"]: item for item in get_client().request("GET", "/work_pool_types")}
        if pool_type not in types:
            raise ObjectNotFound(
                f"Unknown work pool type {pool_type!r}; known types: {', '.join(sorted(types))}."
            )
        template = types[pool_type]["base_job_template"]
    text = json.dumps(template, indent=2) + "\n"
    if file is None:
        typer.echo(text, nl=False)
        return
    file.write_text(text)
    output.note(f"Wrote the {pool_type} job template to {file}.")


# -- work-queue ----------------------------------------------------------------------------


@handle_errors
def create_queue(
    name: QueueArgument,
    pool: PoolOption,
    priority: Annotated[
        int | None,
        typer.Option(
            metavar="N", min=1, help="1 is served first; default: after the pool's other queues."
        ),
    ] = None,
    concurrency_limit: Annotated[
        int | None,
        typer.Option(
            metavar="N", min=0, help="Runs of the queue that may be Pending or Running at once."
        ),
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    description: Annotated[str | None, typer.Option(metavar="TEXT", help="What it is for.")] = None,
) -> None:
    """Create a work queue in a pool."""
    from headwater.cli import output

    body = {
        "name": name,
        "priority": priority,
        "concurrency_limit": concurrency_limit,
        "paused": paused,
        "description": description,
    }
    queue = get_client().request("POST", f"{_pool_path(pool)}/queues", json=body)
    output.console().print(
        f"Created work queue {queue['name']!r} in work pool {pool!r} "
        f"(priority {queue['priority']})."
    )


@handle_errors
def ls_queues(pool: PoolOption, as_json: JsonOption = False) -> None:
    """List a pool's work queues in the order they are served."""
    from headwater.cli import output

    queues = get_client().request("GET", f"{_pool_path(pool)}/queues")
    if as_json:
        output.print_json(queues)
        return
    output.console().print(_queue_table(queues))


@handle_errors
def inspect_queue(name: QueueArgument, pool: PoolOption, as_json: JsonOption = False) -> None:
    """Show a work queue."""
    from headwater.cli import output

    queue = get_client().request("GET", _queue_path(pool, name))
    if as_json:
        output.print_json(queue)
        return
    from rich.table import Table
    from rich.text import Text

    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold", no_wrap=True)
    details.add_column()
    for label, value in (
        ("Work queue", Text(queue["name"])),
        ("ID", Text(queue["id"])),
        ("Work pool", Text(queue["work_pool_name"])),
        ("Priority", Text(str(queue["priority"]))),
        ("Status", _paused(queue["paused"])),
        ("Concurrency limit", Text(_limit(queue["concurrency_limit"]))),
        ("Description", Text(queue["description"] or "-")),
        ("Created", Text(output.local_time(_epoch(queue["created"])))),
    ):
        details.add_row(label, value)
    output.console().print(details)


def _patch_queue(pool: str, name: str, changes: dict[str, Any], done: str) -> None:
    from headwater.cli import output

    get_client().request("PATCH", _queue_path(pool, name), json=changes)
    output.console().print(done)


@handle_errors
def pause_queue(name: QueueArgument, pool: PoolOption) -> None:
    """Pause a work queue: workers claim none of its runs until it is resumed."""
    _patch_queue(pool, name, {"paused": True}, f"Paused work queue {name!r} of pool {pool!r}.")


@handle_errors
def resume_queue(name: QueueArgument, pool: PoolOption) -> None:
    """Resume a paused work queue; its due runs start at once."""
    _patch_queue(pool, name, {"paused": False}, f"Resumed work queue {name!r} of pool {pool!r}.")


@handle_errors
def set_queue_concurrency_limit(
    name: QueueArgument, limit: LimitArgument, pool: PoolOption
) -> None:
    """Limit how many runs of the queue may be Pending or Running at once."""
    _patch_queue(
        pool,
        name,
        {"concurrency_limit": limit},
        f"Work queue {name!r} of pool {pool!r} runs at most {limit} at once.",
    )


@handle_errors
def clear_queue_concurrency_limit(name: QueueArgument, pool: PoolOption) -> None:
    """Remove the queue's concurrency limit."""
    _patch_queue(
        pool,
        name,
        {"concurrency_limit": None},
        f"Work queue {name!r} of pool {pool!r} has no concurrency limit.",
    )


@handle_errors
def delete_queue(name: QueueArgument, pool: PoolOption) -> None:
    """Delete a work queue (not "default"); runs waiting in it move to the default queue.

    Refused while deployments use the queue.
    """
    from headwater.cli import output

    get_client().request("DELETE", _queue_path(pool, name))
    output.console().print(f"Deleted work queue {name!r} of pool {pool!r}.")


def register(app: typer.Typer) -> None:
    """Add `work-pool` and `work-queue` to `app`."""
    pools = typer.Typer(
        no_args_is_help=True,
        help="Create and manage work pools: where deployments' runs wait for workers.",
    )
    pools.command("create")(create_pool)
    pools.command("ls")(ls_pools)
    pools.command("inspect")(inspect_pool)
    pools.command("pause")(pause_pool)
    pools.command("resume")(resume_pool)
    pools.command("set-concurrency-limit")(set_pool_concurrency_limit)
    pools.command("clear-concurrency-limit")(clear_pool_concurrency_limit)
    pools.command("delete")(delete_pool)
    pools.command("get-default-base-job-template")(get_default_base_job_template)
    app.add_typer(pools, name="work-pool")

    queues = typer.Typer(
        no_args_is_help=True,
        help="Create and manage the queues of a work pool (priorities, limits, pause).",
    )
    queues.command("create")(create_queue)
    queues.command("ls")(ls_queues)
    queues.command("inspect")(inspect_queue)
    queues.command("pause")(pause_queue)
    queues.command("resume")(resume_queue)
    queues.command("set-concurrency-limit")(set_queue_concurrency_limit)
    queues.command("clear-concurrency-limit")(clear_queue_concurrency_limit)
    queues.command("delete")(delete_queue)
    app.add_typer(queues, name="work-queue")
