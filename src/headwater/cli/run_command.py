"""`headwater run -- <command>`: record any program's run as a flow run.

The command runs as a child process; its standard output and error pass
through unchanged and are also recorded as the run's logs (stdout at INFO,
stderr at WARNING), its exit status decides the final state, and the run's
duration and parameters (the command line) are recorded like any flow's.
It goes through the SDK, so it records wherever flows do: the embedded
store, or the server when HEADWATER_API_URL is set.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from headwater.cli.session import handle_errors


class CommandFailed(Exception):
    """The command exited with a non-zero status."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"Command was stopped by {name}."
    return f"Command exited with status {returncode}."


def _pump(stream: IO[str], echo: IO[str], log: Any, level: int) -> None:
    """Copy lines from the child to our own stream and to the run's logs."""
    for line in stream:
        echo.write(line)
        echo.flush()
        log.log(level, "%s", line.rstrip("\n"), extra={"console": False})


def run_command(argv: list[str], *, name: str | None = None, tags: list[str] | None = None) -> int:
    """Run `argv` as a recorded flow run; return the exit status to exit with."""
    import logging

    from headwater import flow, get_run_logger
    from headwater.context import tags as tags_context
    from headwater.core.states import State

    if not argv:
        raise typer.BadParameter("give the command to run after `--`, e.g. headwater run -- ls")
    flow_name = name or Path(argv[0]).name
    child: list[subprocess.Popen[str]] = []

    def forward(signum: int, _frame: Any) -> None:
        if child:
            child[0].send_signal(signum)

    @flow(name=flow_name, validate_parameters=False)
    def command(command: list[str]) -> int:
        log = get_run_logger()
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise CommandFailed(f"Cannot start {command[0]!r}: {exc.strerror}.", 127) from None
        child.append(process)
        assert process.stdout is not None and process.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(process.stdout, sys.stdout, log, logging.INFO)),
            threading.Thread(target=_pump, args=(process.stderr, sys.stderr, log, logging.WARNING)),
        ]
        for pump in pumps:
            pump.start()
        returncode = process.wait()
        for pump in pumps:
            pump.join()
        if returncode != 0:
            raise CommandFailed(_describe(returncode), returncode)
        return returncode

    previous = {
        number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with tags_context(*(tags or [])):
            state: State = command(argv, return_state=True)  # type: ignore[call-arg,assignment]
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if state.is_completed():
        return 0
    error = state.result(raise_on_failure=False)
    if isinstance(error, CommandFailed):
        if error.returncode == 127:
            from headwater.cli.output import fail

            fail(str(error), 127)
        # Like a shell: a child stopped by signal N gives 128 + N.
        return error.returncode if error.returncode > 0 else 128 - error.returncode
    return 1


@handle_errors
def run(
    command: Annotated[
        list[str],
        typer.Argument(help="The command and its arguments, after `--`.", show_default=False),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            "-n",
            help="The flow name to record it under (default: the program's file name).",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="A tag for the run; repeat for several."),
    ] = None,
) -> None:
    """Run any command and record it as a flow run (state, output as logs, duration).

    Example: headwater run --name nightly-backup -- ./backup.sh --full
    """
    raise typer.Exit(run_command(command, name=name, tags=tag))
