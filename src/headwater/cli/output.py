"""How the CLI shows things: consoles, state colours, times, durations, ids, JSON.

Imported only inside command functions, so `headwater --help` does not pay
for rich's renderables.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.text import Text

from headwater.core.states import StateType

if TYPE_CHECKING:
    from headwater.store.queries import FlowRunRow, StateRow, TaskRunRow

STATE_STYLES = {
    StateType.SCHEDULED: "yellow",
    StateType.PENDING: "bright_black",
    StateType.RUNNING: "blue",
    StateType.COMPLETED: "green",
    StateType.FAILED: "red",
    StateType.CRASHED: "bold red",
    StateType.CANCELLED: "bright_black",
    StateType.CANCELLING: "bright_black",
    StateType.PAUSED: "yellow",
}

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*(@)")

#: Console width when stdout is not a terminal (and COLUMNS is not set).
PIPED_WIDTH = 1000

#: Characters of an id shown in tables: the time part of a UUIDv7 and 12 random
#: bits, which tells apart runs started in the same millisecond.
SHORT_ID_LENGTH = 18


def console() -> Console:
    """A console on the current stdout (created per call, so tests can capture it).

    Output piped to another program is not cut to 80 columns: tables take the
    width their content needs, so `grep` sees whole names and ids.
    """
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPED_WIDTH
    return out


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` as one red line on stderr and exit with `code`."""
    import typer

    line = " ".join(part.strip() for part in message.strip().splitlines() if part.strip())
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(line, style="red"))
    raise typer.Exit(code)


def note(message: str) -> None:
    """Print a dim remark on stderr, where it does not mix with data piped from stdout."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(Text(message, style="dim"))


def mask_url(url: str) -> str:
    """`url` with its password, if any, replaced by ***."""
    return _PASSWORD_IN_URL.sub(r"\1***\2", url)


def short_id(value: uuid.UUID) -> str:
    """The leading part of an id that `headwater ... <id>` commands accept."""
    return str(value)[:SHORT_ID_LENGTH]


def state_text(state_type: StateType, name: str) -> Text:
    """A state's display name, coloured by its type."""
    return Text(name, style=STATE_STYLES.get(state_type, ""))


def iso(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC for a stored epoch timestamp (JSON output)."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat()


def local_time(timestamp: float | None, *, millis: bool = False) -> str:
    """A timestamp in the local time zone, "YYYY-MM-DD HH:MM:SS[.mmm]"; "-" if None."""
    if timestamp is None:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if millis:
        text += f".{moment.microsecond // 1000:03d}"
    return text


def format_duration(seconds: float | None) -> str:
    """A short human duration: 0.042s, 12.3s, 4m 05s, 2h 03m, 3d 04h; "-" if None."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def run_duration(start: float | None, end: float | None, state_type: StateType) -> Text:
    """A run's duration; a running run shows its time so far, dimmed."""
    if start is not None and end is not None:
        return Text(format_duration(max(0.0, end - start)))
    if start is not None and state_type is StateType.RUNNING:
        return Text(format_duration(max(0.0, time.time() - start)), style="dim")
    return Text("-")


def run_start(start: float | None, expected: float | None) -> Text:
    """When a run started, or (dimmed) when it is expected to start."""
    if start is not None:
        return Text(local_time(start))
    if expected is not None:
        return Text(local_time(expected), style="dim")
    return Text("-")


def state_counts(counts: dict[StateType, int]) -> str:
    """ "3 Completed, 1 Failed" in lifecycle order."""
    return ", ".join(
        f"{counts[member]} {member.value.title()}" for member in StateType if counts.get(member)
    )


def print_json(value: Any) -> None:
    """Write `value` as indented JSON to stdout, uncoloured, for scripts."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


# -- JSON shapes of the store's rows (full ids, ISO times) ----------------------


def flow_run_json(run: FlowRunRow) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "name": run.name,
        "flow_name": run.flow_name,
        "state_type": run.state_type.value,
        "state_name": run.state_name,
        "state_message": run.state_message,
        "parameters": run.parameters,
        "tags": run.tags,
        "run_count": run.run_count,
        "parent_flow_run_id": _id(run.parent_flow_run_id),
        "parent_task_run_id": _id(run.parent_task_run_id),
        "deployment_id": _id(run.deployment_id),
        "expected_start_time": iso(run.expected_start_time),
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "duration": run.duration,
        "created": iso(run.created),
        "updated": iso(run.updated),
    }


def task_run_json(run: TaskRunRow) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "name": run.name,
        "task_key": run.task_key,
        "flow_run_id": _id(run.flow_run_id),
        "flow_run_name": run.flow_run_name,
        "state_type": run.state_type.value,
        "state_name": run.state_name,
        "state_message": run.state_message,
        "tags": run.tags,
        "run_count": run.run_count,
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "duration": run.duration,
        "created": iso(run.created),
    }


def state_json(state: StateRow) -> dict[str, Any]:
    return {
        "type": state.type.value,
        "name": state.name,
        "message": state.message,
        "timestamp": iso(state.timestamp),
    }


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
