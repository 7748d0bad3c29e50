"""`headwater flow-run ...`: list, inspect and read the logs of flow runs.

Module-level imports stay light (typer and the standard library) so that
`headwater --help` is fast; SQLAlchemy and rich load inside the commands.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from headwater.cli.session import handle_errors, open_reader

if TYPE_CHECKING:
    from headwater.cli.session import Reader
    from headwater.store.queries import FlowRunRow, LogRow

#: How often `logs --follow` reads the store (or asks the server).
POLL_INTERVAL = 0.5
#: Seconds `logs --follow` looks back on each poll: lines logged by different
#: threads can reach the store in different batches, slightly out of order.
FOLLOW_OVERLAP = 5.0
#: `logs --follow` re-runs crash detection every this many polls, so following a
#: run whose process was killed ends (as Crashed) instead of waiting forever.
CRASH_CHECK_POLLS = 10
#: Task runs `inspect` lists before pointing at `headwater task-run ls`.
INSPECT_TASK_RUNS = 100

FlowRunId = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="Flow run id, or any unique leading part of it (as `headwater flow-run ls` shows).",
        show_default=False,
    ),
]
StateOption = Annotated[
    list[str] | None,
    typer.Option(
        "--state",
        "-s",
        metavar="STATE",
        help="Only runs whose state type is STATE (repeat, or separate with commas): "
        "SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, CRASHED, PAUSED, "
        "CANCELLING.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (full ids, ISO 8601 UTC times) instead.")
]


@handle_errors
def ls(
    flow: Annotated[
        str | None,
        typer.Option("--flow", "-f", metavar="NAME", help="Only runs of the flow named NAME."),
    ] = None,
    state: StateOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="Only runs that started (or are expected to start) at or after TIME: an ISO "
            "date/time in local time (2024-05-01T14:30) or a time ago (30m, 1h, 2d, 1w).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Only runs that started at or before TIME (as --since)."),
    ] = None,
    parent: Annotated[
        str | None,
        typer.Option(
            metavar="ID",
            help="Only subflow runs of this flow run (its id or a unique leading part of it).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List flow runs, latest first."""
    from headwater.cli import output, parsing
    from headwater.store import queries

    state_types = parsing.parse_states(state or [])
    since_time = parsing.parse_time(since, "--since") if since else None
    until_time = parsing.parse_time(until, "--until") if until else None
    with open_reader() as reader:
        parent_id = None if parent is None else reader.read_flow_run(parent).id
        filters = queries.FlowRunFilters(
            flow_name=flow,
            state_types=state_types,
            since=since_time,
            until=until_time,
            parent_flow_run_id=parent_id,
        )
        runs = reader.list_flow_runs(**filters, limit=limit)
        counts = reader.count_flow_runs_by_state(**filters)
    if as_json:
        output.print_json([output.flow_run_json(run) for run in runs])
        return
    out = output.console()
    if not runs:
        out.print("No flow runs found.")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("Name", overflow="fold", min_width=8)
    table.add_column("Flow", overflow="fold", min_width=6)
    table.add_column("State", no_wrap=True)
    table.add_column("Start", min_width=10)
    table.add_column("Duration", justify="right", min_width=6)
    for run in runs:
        table.add_row(
            output.short_id(run.id),
            Text(run.name),
            Text(run.flow_name),
            output.state_text(run.state_type, run.state_name),
            output.run_start(run.start_time, run.expected_start_time),
            output.run_duration(run.start_time, run.end_time, run.state_type),
        )
    out.print(table)
    total = sum(counts.values())
    out.print(
        f"\n{len(runs)} of {total} flow run{'s' if total != 1 else ''} "
        f"({output.state_counts(counts)}).",
        style="dim",
    )


@handle_errors
def inspect(flow_run_id: FlowRunId, as_json: JsonOption = False) -> None:
    """Show a flow run: its details, task runs and state history."""
    from headwater.cli import output
    from headwater.exceptions import ObjectNotFound

    with open_reader() as reader:
        run = reader.read_flow_run(flow_run_id)
        parent: FlowRunRow | None = None
        if run.parent_flow_run_id is not None:
            try:
                parent = reader.read_flow_run(run.parent_flow_run_id)
            except ObjectNotFound:  # pruned by retention
                parent = None
        task_runs = reader.list_task_runs(
            flow_run_id=run.id,
            limit=None if as_json else INSPECT_TASK_RUNS,
            newest_first=False,
        )
        task_counts = reader.count_task_runs_by_state(flow_run_id=run.id)
        history = reader.read_state_history(flow_run_id=run.id)
        subflow_runs = sum(reader.count_flow_runs_by_state(parent_flow_run_id=run.id).values())
    if as_json:
        document = output.flow_run_json(run)
        document["task_runs"] = [output.task_run_json(task) for task in task_runs]
        document["state_history"] = [output.state_json(entry) for entry in history]
        output.print_json(document)
        return

    from rich.table import Table
    from rich.text import Text

    out = output.console()
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold", no_wrap=True)
    details.add_column()
    state = output.state_text(run.state_type, run.state_name)
    if run.state_message:
        state.append(f"  {run.state_message}")
    parent_text = "-"
    if run.parent_flow_run_id is not None:
        parent_text = str(run.parent_flow_run_id)
        if parent is not None:
            parent_text += f" ({parent.name}, flow {parent.flow_name})"
    for label, value in (
        ("Flow run", Text(run.name)),
        ("ID", Text(str(run.id))),
        ("Flow", Text(run.flow_name)),
        ("State", state),
        ("Parameters", Text(json.dumps(run.parameters, default=str))),
        ("Tags", Text(", ".join(map(str, run.tags)) or "-")),
        ("Parent flow run", Text(parent_text)),
        ("Run count", Text(str(run.run_count))),
        ("Created", Text(output.local_time(run.created))),
        ("Expected start", Text(output.local_time(run.expected_start_time))),
        ("Start", Text(output.local_time(run.start_time))),
        ("End", Text(output.local_time(run.end_time))),
        ("Duration", output.run_duration(run.start_time, run.end_time, run.state_type)),
    ):
        details.add_row(label, value)
    out.print(details)

    total = sum(task_counts.values())
    summary = f" ({output.state_counts(task_counts)})" if total else ""
    out.print(f"\n[bold]Task runs: {total}[/bold]{summary}")
    if task_runs:
        tasks = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("Name", "State", "Start", "Duration", "Runs"):
            tasks.add_column(column, no_wrap=column != "Name", justify="left")
        for task in task_runs:
            tasks.add_row(
                Text(task.name),
                output.state_text(task.state_type, task.state_name),
                output.run_start(task.start_time, None),
                output.run_duration(task.start_time, task.end_time, task.state_type),
                str(task.run_count),
            )
        out.print(tasks)
        if total > len(task_runs):
            out.print(
                f"... and {total - len(task_runs)} more: `headwater task-run ls "
                f"--flow-run {run.id} --limit {total}`",
                style="dim",
            )
    if subflow_runs:
        out.print(
            f"\n[bold]Subflow runs: {subflow_runs}[/bold] "
            f"[dim](`headwater flow-run ls --parent {run.id}`)[/dim]"
        )

    out.print("\n[bold]State history[/bold]")
    states = Table(box=None, pad_edge=False, header_style="bold")
    states.add_column("Time", no_wrap=True)
    states.add_column("State", no_wrap=True)
    states.add_column("Message", overflow="fold")
    for entry in history:
        states.add_row(
            output.local_time(entry.timestamp, millis=True),
            output.state_text(entry.type, entry.name),
            Text(entry.message or ""),
        )
    out.print(states if history else Text("No recorded states.", style="dim"))


@handle_errors
def logs(
    flow_run_id: FlowRunId,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing new lines until the run reaches a final state (Ctrl-C stops).",
        ),
    ] = False,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            "-l",
            metavar="LEVEL",
            help="Only lines at LEVEL or above: DEBUG, INFO, WARNING, ERROR, CRITICAL.",
        ),
    ] = None,
) -> None:
    """Print the logs of a flow run and its task runs, oldest first."""
    from headwater.cli import output, parsing
    from headwater.core.states import TERMINAL_TYPES

    min_level = parsing.parse_level(level) if level else None
    try:
        with open_reader() as reader:
            run = reader.read_flow_run(flow_run_id)
            lines = reader.read_logs(flow_run_id=run.id, min_level=min_level)
            printer = LogPrinter()
            printer.write(lines)
            finished_a_while_ago = (
                run.state_type in TERMINAL_TYPES
                and time.time() - run.state_timestamp > FOLLOW_OVERLAP
            )
            if follow and not finished_a_while_ago:
                _follow(reader, run, lines, min_level, printer)
            elif not lines:
                output.note(f"No logs for flow run {run.id}.")
    except KeyboardInterrupt:
        if not follow:
            raise
        # Ctrl-C is how one stops following: not an error.


@handle_errors
def cancel(flow_run_id: FlowRunId) -> None:
    """Cancel a flow run: not started yet, it is Cancelled at once; Pending or Running, its
    worker stops its process within seconds, then it is Cancelled."""
    from rich.text import Text

    from headwater.cli import output
    from headwater.client.api import get_client
    from headwater.core.states import StateType

    with open_reader() as reader:
        run = reader.read_flow_run(flow_run_id)
    answer = get_client().request("POST", f"/flow_runs/{run.id}/cancel")
    state = StateType(answer["state_type"])
    after = ": its worker stops it within seconds." if state is StateType.CANCELLING else "."
    output.console().print(
        Text.assemble(
            f"Flow run {run.name!r} ({run.id}): ",
            output.state_text(state, answer["state_name"]),
            after,
        )
    )


@handle_errors
def retry(flow_run_id: FlowRunId) -> None:
    """Run a Failed, Crashed or Cancelled run of a deployment again, under the same id.

    A worker of its deployment runs it at once; tasks that persisted their results in
    an earlier attempt are not run again (resume from the last checkpoint).
    """
    from rich.text import Text

    from headwater.cli import output
    from headwater.client.api import get_client
    from headwater.core.states import StateType

    with open_reader() as reader:
        run = reader.read_flow_run(flow_run_id)
    answer = get_client().request("POST", f"/flow_runs/{run.id}/retry")
    output.console().print(
        Text.assemble(
            f"Flow run {run.name!r} ({run.id}): ",
            output.state_text(StateType(answer["state_type"]), answer["state_name"]),
            f", attempt {answer['run_count'] + 1} due now.",
        )
    )


@handle_errors
def resume(
    flow_run_id: FlowRunId,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="KEY=VALUE",
            help="A field of the input the run waits for (repeat for several). VALUE is "
            "read as JSON when it is JSON (approved=true is a boolean), else as text.",
            show_default=False,
        ),
    ] = None,
    input_json: Annotated[
        str | None,
        typer.Option(
            "--input-json",
            metavar="JSON",
            help="The input as one JSON object; --input values override its keys.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Resume a paused flow run (it goes on in its process) or a suspended one (its
    deployment runs it again), with the input it waits for."""
    from rich.text import Text

    from headwater.cli import output
    from headwater.cli.deploy import parse_assignments
    from headwater.client.api import get_client
    from headwater.core.states import StateType
    from headwater.exceptions import ConfigurationError

    run_input = None
    if input_json is not None:
        try:
            run_input = json.loads(input_json)
        except ValueError as exc:
            raise ConfigurationError(
                f"--input-json is not valid JSON ({exc}): {input_json!r}."
            ) from None
        if not isinstance(run_input, dict):
            raise ConfigurationError(
                f"--input-json must be a JSON object such as '{{\"approved\": true}}', not "
                f"{input_json!r}."
            )
    if inputs:
        run_input = {**(run_input or {}), **parse_assignments(inputs, "--input")}
    with open_reader() as reader:
        run = reader.read_flow_run(flow_run_id)
    answer = get_client().request(
        "POST", f"/flow_runs/{run.id}/resume", json={"run_input": run_input}
    )
    state = StateType(answer["state_type"])
    after = (
        ": a worker of its deployment runs it again."
        if state is StateType.SCHEDULED
        else ": it goes on."
    )
    output.console().print(
        Text.assemble(
            f"Flow run {run.name!r} ({run.id}) resumed: ",
            output.state_text(state, answer["state_name"]),
            after,
        )
    )


def _follow(
    reader: Reader,
    run: FlowRunRow,
    lines: list[LogRow],
    min_level: int | None,
    printer: LogPrinter,
) -> None:
    """Print lines as they arrive until the run is final.

    Against a server, the live stream pushes them. A store is polled, plus once
    more after the final state for lines flushed just after it.
    """
    from headwater.core.states import TERMINAL_TYPES

    seen = {line.id: line.timestamp for line in lines}
    stream = reader.stream_logs(flow_run_id=run.id, min_level=min_level)
    if stream is not None:
        # A server pushes lines as they arrive (GET /api/stream), history first:
        # skip what was printed already, stop at its `end` event.
        for batch in stream:
            unseen = [line for line in batch if line.id not in seen]
            seen.update((line.id, line.timestamp) for line in unseen)
            printer.write(unseen)
        return
    latest = max(seen.values(), default=None)
    finished = run.state_type in TERMINAL_TYPES
    polls = 0
    while True:
        time.sleep(POLL_INTERVAL)
        polls += 1
        if polls % CRASH_CHECK_POLLS == 0:
            reader.detect_crashed_runs()
        reader.refresh()
        state_type = reader.read_flow_run(run.id).state_type
        new_lines = reader.read_logs(
            flow_run_id=run.id,
            after_timestamp=None if latest is None else latest - FOLLOW_OVERLAP,
            min_level=min_level,
        )
        unseen = [line for line in new_lines if line.id not in seen]
        seen.update((line.id, line.timestamp) for line in unseen)
        printer.write(unseen)
        if seen:
            latest = max(seen.values())
            horizon = latest - FOLLOW_OVERLAP
            seen = {key: stamp for key, stamp in seen.items() if stamp >= horizon}
        if finished:
            return
        finished = state_type in TERMINAL_TYPES


#: ANSI colours of log levels (log lines bypass rich: printing 50,000 lines
#: through it takes seconds, plain writes take milliseconds).
_LEVEL_COLOURS = {10: "\x1b[2m", 20: "\x1b[36m", 30: "\x1b[33m", 40: "\x1b[31m", 50: "\x1b[1;31m"}
_RESET = "\x1b[0m"


class LogPrinter:
    """Writes log lines to stdout, coloured when stdout is a terminal (and NO_COLOR is unset)."""

    def __init__(self) -> None:
        import os
        import sys

        self.stream = sys.stdout
        self.colour = self.stream.isatty() and "NO_COLOR" not in os.environ

    def write(self, lines: list[LogRow]) -> None:
        import logging

        from headwater.cli.output import local_time

        chunk = []
        for line in lines:
            level = f"{logging.getLevelName(line.level):<8}"
            if self.colour:
                colour = _LEVEL_COLOURS.get(min(50, line.level // 10 * 10), "")
                level = f"{colour}{level}{_RESET}"
            source = line.task_run_name or "flow"
            stamp = local_time(line.timestamp, millis=True)
            chunk.append(f"{stamp} | {level} | {source} - {line.message}\n")
        self.stream.write("".join(chunk))
        self.stream.flush()
