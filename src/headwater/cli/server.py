"""`headwater server start`, `headwater services start`, `headwater database upgrade|reset`.

Module-level imports stay light (typer and the standard library): uvicorn,
FastAPI and SQLAlchemy load inside the commands.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from headwater.cli.session import handle_errors

#: Where `headwater server start` listens unless told otherwise.


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def refusal(host: str, api_key: str | None, insecure_no_auth: bool) -> str | None:
    """Why the server must not listen on `host`, or None if it may."""
    if api_key or insecure_no_auth or is_loopback(host):
        return None
    return (
        f"Refusing to listen on {host} without an API key: anyone who can reach it could read "
        "and change every run. Set HEADWATER_API_KEY (clients send it as a Bearer token), or "
        "pass --insecure-no-auth to serve without authentication."
    )


def _upgrade_in_child(url: str) -> None:
    """Create or upgrade the schema at `url` in a child process, if it is not at head."""
    import subprocess
    import sys

    from headwater.cli import output
    from headwater.store.schema import HEAD_REVISION, check_revision, read_revision

    found = read_revision(url)
    check_revision(url, found)  # a newer store: a clear error here
    if found == HEAD_REVISION:
        return
    code = (
        "import sys\n"
        "from headwater.exceptions import HeadwaterError\n"
        "from headwater.store.schema import ensure_schema\n"
        "try:\n"
        "    ensure_schema(sys.argv[1])\n"
        "except HeadwaterError as exc:\n"
        "    sys.exit(str(exc))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        output.fail(lines[-1] if lines else f"Cannot upgrade the store at {url}.")


@handle_errors
def start(
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (default HEADWATER_SERVER_HOST, 127.0.0.1); other than "
            "loopback needs an API key.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Port to listen on (default HEADWATER_SERVER_PORT, 4200).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    no_services: Annotated[
        bool,
        typer.Option(
            "--no-services",
            help="Do not run the background services here (run `headwater services start` "
            "elsewhere); for API replicas.",
        ),
    ] = False,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve a non-loopback address without an API key. Anyone who can reach it "
            "can read and change every run.",
        ),
    ] = False,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = False,
) -> None:
    """Serve the web UI and the REST API (and the background services) on the configured store."""
    from headwater.cli import output
    from headwater.settings import get_settings

    settings = get_settings()
    host = host or settings.server_host
    port = settings.server_port if port is None else port
    api_key = settings.api_key
    reason = refusal(host, api_key, insecure_no_auth)
    if reason:
        output.fail(reason)
    url = settings.effective_database_url
    from headwater.store.schema import display_url

    # Once here, not racing in every worker process; an upgrade runs in a child
    # process so that alembic (~9 MB) never stays loaded in the server.
    _upgrade_in_child(url)
    # uvicorn's worker processes read their settings from the environment.
    os.environ["HEADWATER_SERVER_SERVICES"] = "false" if no_services else "true"
    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    output.note(
        f"Headwater UI on http://{shown}:{port}, API on http://{shown}:{port}/api "
        f"(docs: http://{shown}:{port}/docs), "
        f"store {display_url(url)}, "
        f"{'API key required' if api_key else 'no authentication'}"
        f"{'' if no_services else ', services on'}."
    )
    uvicorn.run(
        "headwater.server.asgi:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level=settings.logging_level.lower(),
        # Open live streams resume without gaps (Last-Event-ID): no need to hold
        # a shutdown for them.
        timeout_graceful_shutdown=3,
    )


@handle_errors
def services_start(
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between two rounds of the services.")
    ] = 10.0,
) -> None:
    """Run the background services in the foreground until Ctrl-C: the scheduler, late
    runs, crash detection, runs of dead workers, cancellations, concurrency leases, and
    the automations service (triggers and their actions).

    Safe to run in several processes: each round runs under a lease on the store, and
    one process at a time evaluates automations (the others wait as standbys).
    """
    from headwater.cli import output
    from headwater.server.automations.service import AutomationsService
    from headwater.server.services import Services
    from headwater.settings import get_settings
    from headwater.store.schema import display_url, ensure_schema

    url = get_settings().effective_database_url
    ensure_schema(url)
    output.note(f"Headwater services on {display_url(url)}, every {interval:g}s; Ctrl-C stops.")
    automations = AutomationsService(url)
    automations.start()
    try:
        Services(url, interval=interval).run()
    finally:
        automations.stop()


@handle_errors
def database_upgrade() -> None:
    """Create or upgrade the store's schema to this Headwater's newest revision."""
    from headwater.settings import get_settings
    from headwater.store import migrate
    from headwater.store.schema import display_url

    url = get_settings().effective_database_url
    migrate.upgrade(url)
    typer.echo(f"Store {display_url(url)} is at schema revision {migrate.current_revision(url)}.")


@handle_errors
def database_reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every flow, run, state and log in the store, and recreate its tables."""
    from headwater.settings import get_settings
    from headwater.store import migrate
    from headwater.store.schema import display_url

    url = get_settings().effective_database_url
    if not yes:
        typer.confirm(f"Delete ALL data in {display_url(url)} and recreate its tables?", abort=True)
    migrate.reset(url)
    typer.echo(f"Store {display_url(url)} was reset to an empty schema.")


def register(app: typer.Typer) -> None:
    """Add the `server`, `services` and `database` command groups to `app`."""
    server = typer.Typer(no_args_is_help=True, help="Run the Headwater API server.")
    server.command("start")(start)
    app.add_typer(server, name="server")

    services = typer.Typer(no_args_is_help=True, help="Run the background services.")
    services.command("start")(services_start)
    app.add_typer(services, name="services")

    database = typer.Typer(no_args_is_help=True, help="Upgrade or reset the store's schema.")
    database.command("upgrade")(database_upgrade)
    database.command("reset")(database_reset)
    app.add_typer(database, name="database")
