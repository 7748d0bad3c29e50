"""The `headwater` command: a Typer app assembled from the command modules.

`create_app()` builds a new app on each call (no app object at import time),
which also gives each test a fresh one.
"""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli import (
    artifacts,
    automations,
    concurrency_limits,
    config,
    deploy,
    deployments,
    events,
    flow_runs,
    run_command,
    secrets,
    server,
    spool,
    task_runs,
    variables,
    webhooks,
    work_pools,
    workers,
)


def headwater_version() -> str:
    """The running Headwater's version (`headwater.__version__`)."""
    from headwater._version import __version__

    return __version__


def version() -> None:
    """Print the Headwater version."""
    typer.echo(headwater_version())


def _print_version(value: bool) -> None:
    if value:
        typer.echo(headwater_version())
        raise typer.Exit()


def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the Headwater version and exit.",
        ),
    ] = False,
) -> None:
    """Headwater: observe and manage flow runs from the command line.

    Commands read the store configured by HEADWATER_DATABASE_URL (default: the
    SQLite file under HEADWATER_HOME); see `headwater config view`.
    """


def create_app() -> typer.Typer:
    """A new `headwater` app with every command registered."""
    app = typer.Typer(
        name="headwater",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,  # locals may hold secrets
    )
    app.callback()(_root)
    app.command("version")(version)
    app.command(
        "run",
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
    )(run_command.run)

    flow_run = typer.Typer(
        no_args_is_help=True, help="List flow runs, inspect one, read its logs, or cancel it."
    )
    flow_run.command("ls")(flow_runs.ls)
    flow_run.command("inspect")(flow_runs.inspect)
    flow_run.command("logs")(flow_runs.logs)
    flow_run.command("cancel")(flow_runs.cancel)
    flow_run.command("resume")(flow_runs.resume)
    flow_run.command("retry")(flow_runs.retry)
    app.add_typer(flow_run, name="flow-run")

    task_run = typer.Typer(no_args_is_help=True, help="List task runs.")
    task_run.command("ls")(task_runs.ls)
    app.add_typer(task_run, name="task-run")

    config_app = typer.Typer(no_args_is_help=True, help="Show Headwater's settings.")
    config_app.command("view")(config.view)
    app.add_typer(config_app, name="config")
    spool_app = typer.Typer(
        no_args_is_help=True, help="Deliver run records spooled while the server was away."
    )
    spool_app.command("flush")(spool.flush)
    app.add_typer(spool_app, name="spool")
    server.register(app)
    work_pools.register(app)
    concurrency_limits.register(app)
    deploy.register(app)
    deployments.register(app)
    workers.register(app)
    artifacts.register(app)
    variables.register(app)
    secrets.register(app)
    events.register(app)
    webhooks.register(app)
    automations.register(app)
    return app
