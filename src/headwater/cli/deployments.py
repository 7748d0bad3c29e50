"""`headwater deployment ls|inspect|run|pause|resume|delete` (`deploy` is in deploy.py).

Commands speak to the API through `getget_client()`: the server at
HEADWATER_API_URL, or the embedded store's API in this process. Module-level
imports stay light (typer and the standard library).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.deploy import (
    JobVariableOption,
    ParamOption,
    ParamsOption,
    parse_assignments,
    parse_moment,
    parse_parameters,
)
from headwater.cli.session import handle_errors
from headwater.client.api import get_client
from headwater.exceptions import ConfigurationError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

HELP = "List, inspect, run, pause, resume and delete deployments (create them with `deploy`)."

#: How often `deployment run --watch` reads the run's state and logs.
WATCH_INTERVAL = 0.5
#: Reads of the logs after the final state: lines flushed just after it still show.
TRAILING_READS = 2
#: Upcoming times `inspect` shows per schedule.
NEXT_TIMES = 3

DeploymentName = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The deployment: 'flow-name/deployment-name' (as `headwater deployment ls` shows), "
        "or its id.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (as the API returns it) instead.")
]


# -- schedules, for display ------------------------------------------------------------------


def describe_schedule(schedule: dict[str, Any]) -> str:
    """One line for a deployment schedule: its spec, then its parameters and "[inactive]"."""
    from headwater.core.schedules import describe

    text = describe(schedule["schedule"])
    if schedule.get("parameters"):
        text += f", parameters {json.dumps(schedule['parameters'])}"
    if not schedule.get("active", True):
        text += " [inactive]"
    return text


def next_run_times(schedule: dict[str, Any], *, count: int) -> list[float]:
    """The next `count` times of an active schedule from now (none if it is inactive)."""
    from headwater.core.schedules import upcoming

    return upcoming(schedule, time.time(), count=count)


# -- deployment ls / inspect -----------------------------------------------------------------


@handle_errors
def ls(
    flow: Annotated[
        str | None,
        typer.Option(
            "--flow",
            metavar="NAME",
            help="Only deployments of the flow named NAME.",
            show_default=False,
        ),
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool", metavar="NAME", help="Only deployments on this work pool.", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """List deployments by flow and name."""
    query: dict[str, Any] = {"limit": min(limit, 1000)}
    if flow is not None:
        query["flow_name"] = flow
    if pool is not None:
        query["work_pool_name"] = pool
    page = get_client().request("GET", "/deployments", params=query)
    items = page["items"][:limit]
    if as_json:
        _print_json(items)
        return
    out = _console()
    if not items:
        out.print("No deployments found. Create one with `headwater deploy` or flow.serve().")
        return
    from rich.table import Table
    from rich.text import Text

    from headwater.cli.output import short_id

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Deployment", overflow="fold", min_width=10)
    table.add_column("ID", no_wrap=True)
    table.add_column("Work pool", overflow="fold")
    table.add_column("Schedules", overflow="fold")
    table.add_column("Status", no_wrap=True)
    for item in items:
        schedules = "; ".join(describe_schedule(s) for s in item["schedules"]) or "-"
        table.add_row(
            Text(f"{item['flow_name']}/{item['name']}"),
            short_id(uuid.UUID(item["id"])),
            Text(_pool_and_queue(item)),
            Text(schedules),
            _status(item),
        )
    out.print(table)
    total = page["total"]
    out.print(f"\n{len(items)} of {total} deployment{'s' if total != 1 else ''}.", style="dim")


@handle_errors
def inspect(name: DeploymentName, as_json: JsonOption = False) -> None:
    """Show a deployment: parameters, schedules and their next runs, work pool, concurrency."""
    from headwater.deployments.run import resolve_deployment

    item = resolve_deployment(get_client(), name)
    if as_json:
        _print_json(item)
        return
    from rich.table import Table
    from rich.text import Text

    out = _console()
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold", no_wrap=True)
    details.add_column(overflow="fold")
    limit = item["concurrency_limit"]
    concurrency = "-"
    if limit is not None:
        concurrency = f"{limit} at once; more runs {_collision_text(item['collision_strategy'])}"
    rows: list[tuple[str, Text]] = [
        ("Deployment", Text(f"{item['flow_name']}/{item['name']}")),
        ("ID", Text(item["id"])),
        ("Status", _status(item)),
        ("Description", Text(item["description"] or "-")),
        ("Version", Text(item["version"] or "-")),
        ("Entrypoint", Text(item["entrypoint"] or "-")),
        ("Path", Text(item["path"] or "-")),
        ("Work pool", Text(_pool_and_queue(item))),
        (
            "Job variables",
            Text(json.dumps(item["job_variables"]) if item["job_variables"] else "-"),
        ),
        ("Parameters", Text(json.dumps(item["parameters"]))),
        ("Tags", Text(", ".join(item["tags"]) or "-")),
        ("Concurrency", Text(concurrency)),
        ("Last polled", Text(_local_iso(item["last_polled"]))),
        ("Created", Text(_local_iso(item["created"]))),
        ("Updated", Text(_local_iso(item["updated"]))),
    ]
    for label, value in rows:
        details.add_row(label, value)
    out.print(details)

    schema_rows = parameter_summary(item["parameter_schema"], item["parameters"])
    enforced = "" if item["enforce_parameter_schema"] else " [dim](not enforced)[/dim]"
    out.print(f"\n[bold]Parameter schema[/bold]{enforced}")
    if schema_rows:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("Parameter", "Type", "Default"):
            table.add_column(column, overflow="fold")
        for row in schema_rows:
            table.add_row(*(Text(cell) for cell in row))
        out.print(table)
    else:
        out.print("No parameters.", style="dim")

    out.print("\n[bold]Schedules[/bold]")
    if not item["schedules"]:
        out.print(
            "No schedules: runs start when asked for (`headwater deployment run`).", style="dim"
        )
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("Schedule", overflow="fold")
    table.add_column("Catch-up", no_wrap=True)
    table.add_column("Next runs", overflow="fold")
    for schedule in item["schedules"]:
        upcoming = [] if item["paused"] else next_run_times(schedule, count=NEXT_TIMES)
        table.add_row(
            Text(describe_schedule(schedule)),
            str(schedule["catchup"]).lower(),
            Text(", ".join(_local(moment) for moment in upcoming) or "-"),
        )
    out.print(table)


def parameter_summary(
    schema: dict[str, Any], defaults: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """(name, type, default) of each parameter of a JSON schema; the deployment's own
    defaults win over the function's."""
    required = set(schema.get("required") or [])
    rows = []
    for parameter, prop in (schema.get("properties") or {}).items():
        if parameter in defaults:
            default = json.dumps(defaults[parameter])
        elif "default" in prop:
            default = json.dumps(prop["default"])
        else:
            default = "(required)" if parameter in required else "-"
        rows.append((parameter, _schema_type(prop, schema), default))
    return rows


def _schema_type(prop: Any, root: dict[str, Any]) -> str:
    if not isinstance(prop, dict):
        return "any"
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "enum" in prop:
        return " | ".join(json.dumps(value) for value in prop["enum"])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " | ".join(_schema_type(option, root) for option in prop[key])
    kind = prop.get("type")
    if kind == "array":
        return f"array[{_schema_type(prop.get('items', {}), root)}]"
    if isinstance(kind, list):
        return " | ".join(map(str, kind))
    if kind is None:
        return "any"
    return f"{kind} ({prop['format']})" if "format" in prop else str(kind)


# -- deployment run --------------------------------------------------------------------------


@handle_errors
def run(
    name: DeploymentName,
    param: ParamOption = None,
    params: ParamsOption = None,
    start_in: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            min=0,
            help="Start the run this many seconds from now.",
            show_default=False,
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            metavar="ISO",
            help="Start the run at this time: ISO 8601, local time without an offset.",
            show_default=False,
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            metavar="KEY",
            help="A second `run` with the same key returns the first run instead of a new one.",
            show_default=False,
        ),
    ] = None,
    job_variable: JobVariableOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Wait for the run to end, printing its state changes and logs; exit code 0 "
            "if it Completed, 1 otherwise.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            min=0,
            help="With --watch: stop waiting after this long (exit code 1; the run goes on).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a run of a deployment; a worker of its pool (or its serve process) runs it."""
    from headwater.cli import output
    from headwater.deployments.run import resolve_deployment, run_deployment

    if start_in is not None and start_at is not None:
        raise ConfigurationError("Give --start-in or --start-at, not both.")
    if timeout is not None and not watch:
        raise ConfigurationError("--timeout applies to --watch: add --watch.")
    scheduled: dt.datetime | None = None
    if start_in is not None:
        scheduled = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=start_in)
    elif start_at is not None:
        scheduled = parse_moment(start_at, "--start-at")
    parameters = parse_parameters(params, param)
    job_variables = parse_assignments(job_variable, "--job-variable")
    client = get_client()
    found = resolve_deployment(client, name)
    created = run_deployment(
        found["id"],
        parameters=parameters,
        scheduled_time=scheduled,
        timeout=0,
        idempotency_key=idempotency_key,
        as_subflow=False,
        job_variables=job_variables or None,
    )
    full_name = f"{found['flow_name']}/{found['name']}"
    due = created.expected_start_time
    when = "due now"
    if due is not None and due.timestamp() > time.time() + 1:
        when = f"due {_local(due.timestamp())}"
    from rich.text import Text

    out = _console()
    out.print(
        Text.assemble(
            "Flow run ",
            (repr(created.name), "bold"),
            f" ({created.id}) of deployment {full_name!r}: ",
            output.state_text(created.state.type, created.state.name),
            f", {when}.",
        )
    )
    if found["paused"]:
        output.note(
            f"Deployment {full_name!r} is paused: the run waits until `headwater deployment "
            f"resume {_quoted(full_name)}`."
        )
    elif found["status"] != "READY":
        pool = found["work_pool_name"]
        if pool:
            output.note(
                f"No worker of work pool {pool!r} is online: start one with "
                f"`headwater worker start --pool {_quoted(pool)}`."
            )
        else:
            output.note(
                f"Deployment {full_name!r} is served by flow.serve(), which is not running now."
            )
    if not watch:
        out.print(
            f"Follow it: headwater flow-run logs {output.short_id(created.id)} --follow",
            style="dim",
            highlight=False,
        )
        return
    try:
        final = watch_run(created.id, timeout)
    except KeyboardInterrupt:
        output.fail(
            f"Stopped watching; flow run {created.name!r} goes on (`headwater flow-run cancel "
            f"{created.id}` cancels it).",
            code=130,
        )
    if final is None:
        output.fail(
            f"Flow run {created.name!r} has not ended after {timeout:g}s; it goes on: "
            f"`headwater flow-run logs {created.id} --follow` follows it."
        )
    from headwater.core.states import StateType

    if final is not StateType.COMPLETED:
        raise typer.Exit(1)


def watch_run(flow_run_id: uuid.UUID, timeout: float | None) -> Any:
    """Print a run's state changes and log lines until it ends; its final state type, or
    None if `timeout` seconds passed first."""
    from headwater.cli.flow_runs import FOLLOW_OVERLAP, LogPrinter
    from headwater.cli.session import open_reader
    from headwater.core.states import TERMINAL_TYPES

    deadline = None if timeout is None else time.monotonic() + timeout
    printer = LogPrinter()
    out = _console()
    states_seen: set[uuid.UUID] = set()
    last_shown: tuple[Any, str] | None = None
    logs_seen: dict[uuid.UUID, float] = {}
    trailing = 0
    with open_reader() as reader:
        while True:
            reader.refresh()
            current = reader.read_flow_run(flow_run_id)
            events: list[tuple[float, int, Any]] = []
            for state in reader.read_state_history(flow_run_id=flow_run_id):
                if state.id not in states_seen and state.task_run_id is None:
                    states_seen.add(state.id)
                    events.append((state.timestamp, 0, state))
            latest = max(logs_seen.values(), default=None)
            lines = reader.read_logs(
                flow_run_id=flow_run_id,
                after_timestamp=None if latest is None else latest - FOLLOW_OVERLAP,
            )
            for line in lines:
                if line.id not in logs_seen:
                    logs_seen[line.id] = line.timestamp
                    events.append((line.timestamp, 1, line))
            for _, kind, event in sorted(events, key=lambda item: (item[0], item[1])):
                if kind == 0:
                    # Show changes: a state recorded twice in a row (by the server and the
                    # run's process) is one change to the reader.
                    if (event.type, event.name) != last_shown:
                        out.print(_state_line(event))
                    last_shown = (event.type, event.name)
                else:
                    printer.write([event])
            if current.state_type in TERMINAL_TYPES:
                trailing += 1
                if trailing > TRAILING_READS:
                    return current.state_type
            elif deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(WATCH_INTERVAL)


def _state_line(state: Any) -> Text:
    from rich.text import Text

    from headwater.cli.output import local_time, state_text

    line = Text(f"{local_time(state.timestamp, millis=True)} | ")
    line.append_text(state_text(state.type, state.name))
    if state.message:
        line.append(f" - {state.message}")
    return line


# -- pause / resume / delete -----------------------------------------------------------------


@handle_errors
def pause(name: DeploymentName) -> None:
    """Pause a deployment: its schedules make no runs and its queued runs wait."""
    item = _change(name, "pause")
    _console().print(
        f"Paused deployment {item['flow_name']}/{item['name']!s}: no scheduled runs until "
        f"`headwater deployment resume`.",
        highlight=False,
        markup=False,
    )


@handle_errors
def resume(name: DeploymentName) -> None:
    """Resume a paused deployment: its schedules make runs again."""
    item = _change(name, "resume")
    _console().print(
        f"Resumed deployment {item['flow_name']}/{item['name']}.", highlight=False, markup=False
    )


@handle_errors
def delete(
    name: DeploymentName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a deployment, its schedules and its runs not yet started (others stay)."""
    from headwater.deployments.run import resolve_deployment

    client = get_client()
    item = resolve_deployment(client, name)
    full_name = f"{item['flow_name']}/{item['name']}"
    if not yes:
        typer.confirm(f"Delete deployment {full_name!r} and its runs not yet started?", abort=True)
    client.request("DELETE", f"/deployments/{item['id']}")
    _console().print(f"Deleted deployment {full_name}.", highlight=False, markup=False)


def _change(name: str, action: str) -> dict[str, Any]:
    from headwater.deployments.run import resolve_deployment

    client = get_client()
    item = resolve_deployment(client, name)
    changed: dict[str, Any] = client.request("POST", f"/deployments/{item['id']}/{action}")
    return changed


# -- helpers ---------------------------------------------------------------------------------


def _console() -> Console:
    from headwater.cli.output import console

    return console()


def _print_json(value: Any) -> None:
    from headwater.cli.output import print_json

    print_json(value)


def _pool_and_queue(item: dict[str, Any]) -> str:
    if item["work_pool_name"] is None:
        return "- (flow.serve)"
    return f"{item['work_pool_name']} / {item['work_queue_name']}"


def _status(item: dict[str, Any]) -> Text:
    from rich.text import Text

    if item["paused"]:
        return Text("Paused", style="yellow")
    if item["status"] == "READY":
        return Text("Ready", style="green")
    return Text("Not ready", style="bright_black")


def _collision_text(strategy: str) -> str:
    return "are cancelled" if strategy == "CANCEL_NEW" else "wait their turn"


def _local(timestamp: float) -> str:
    from headwater.cli.output import local_time

    return local_time(timestamp)


def _local_iso(value: str | None) -> str:
    return "-" if value is None else _local(dt.datetime.fromisoformat(value).timestamp())


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)


def register(app: typer.Typer) -> None:
    """Add the `deployment` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help=HELP)
    group.command("ls")(ls)
    group.command("inspect")(inspect)
    group.command("run")(run)
    group.command("pause")(pause)
    group.command("resume")(resume)
    group.command("delete")(delete)
    app.add_typer(group, name="deployment")
