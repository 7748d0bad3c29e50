"""`headwater task-run ...`: list task runs."""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli.flow_runs import JsonOption, StateOption
from headwater.cli.session import handle_errors, open_reader


@handle_errors
def ls(
    flow_run: Annotated[
        str | None,
        typer.Option(
            "--flow-run",
            "-r",
            metavar="ID",
            help="Only task runs of this flow run (its id or a unique leading part of it); "
            "listed in the order they were created.",
        ),
    ] = None,
    state: StateOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many task runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List task runs, latest first (or in run order with --flow-run)."""
    from rich.table import Table
    from rich.text import Text

    from headwater.cli import output, parsing

    state_types = parsing.parse_states(state or [])
    with open_reader() as reader:
        flow_run_id = None
        if flow_run is not None:
            flow_run_id = reader.read_flow_run(flow_run).id
        runs = reader.list_task_runs(
            flow_run_id=flow_run_id,
            state_types=state_types,
            limit=limit,
            newest_first=flow_run_id is None,
        )
        counts = reader.count_task_runs_by_state(flow_run_id=flow_run_id, state_types=state_types)
    if as_json:
        output.print_json([output.task_run_json(run) for run in runs])
        return
    out = output.console()
    if not runs:
        out.print("No task runs found.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("Name", overflow="fold", min_width=8)
    table.add_column("Flow run", overflow="fold", min_width=8)
    table.add_column("State", no_wrap=True)
    table.add_column("Start", min_width=10)
    table.add_column("Duration", justify="right", min_width=6)
    table.add_column("Runs", justify="right", min_width=4)
    for run in runs:
        table.add_row(
            output.short_id(run.id),
            Text(run.name),
            Text(run.flow_run_name or "-"),
            output.state_text(run.state_type, run.state_name),
            output.run_start(run.start_time, None),
            output.run_duration(run.start_time, run.end_time, run.state_type),
            str(run.run_count),
        )
    out.print(table)
    total = sum(counts.values())
    out.print(
        f"\n{len(runs)} of {total} task run{'s' if total != 1 else ''} "
        f"({output.state_counts(counts)}).",
        style="dim",
    )
