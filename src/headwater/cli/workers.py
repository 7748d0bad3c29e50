"""`headwater worker start`: run a work pool's flow runs on this machine.

The worker reads its pool's type, builds that type's infrastructure plugin
(`process`: a subprocess per run) and claims the pool's due runs until Ctrl-C.
With no server configured (no HEADWATER_API_URL), it serves the API of the
embedded store in its own process, with the scheduler and the other
services, as `flow.serve()` does, so the runs' processes have an API to
report to. Module-level imports stay light (typer and the standard library).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.exceptions import ObjectNotFound

if TYPE_CHECKING:
    from headwater.client.api import ApiClient

logger = logging.getLogger("headwater.worker")

#: Seconds a claim request waits with a server started here. Runs created by other
#: processes on the embedded store are seen by polling it each second anyway, and a
#: short wait lets the local server stop at once on Ctrl-C (it waits for open requests).
LOCAL_CLAIM_WAIT = 1.0
#: The format of the worker's log lines on stderr.
LOG_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"


@handle_errors
def start(
    pool: Annotated[
        str,
        typer.Option(
            "--pool",
            "-p",
            metavar="NAME",
            help="The work pool to take runs from.",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            "-n",
            metavar="NAME",
            help="The worker's name (default: worker-HOST-PID).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-l",
            min=1,
            help="Most flow runs at once (default: no limit).",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            metavar="NAME",
            help="Only runs of this work queue of the pool (repeat; default: every queue).",
            show_default=False,
        ),
    ] = None,
    heartbeat_interval: Annotated[
        float,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Seconds between two heartbeats; a worker silent for a few is offline and its "
            "runs are recovered.",
        ),
    ] = 10.0,
) -> None:
    """Run the flow runs of a work pool on this machine until Ctrl-C.

    Example: `headwater worker start --pool etl`. Against a server, set
    HEADWATER_API_URL (and HEADWATER_API_KEY).
    """
    from headwater.worker.infrastructure import get_infrastructure
    from headwater.worker.runner import Worker

    _configure_logging()
    # SIGTERM (a service manager, `kill`) stops the worker as Ctrl-C does: it stops the
    # runs it started, which the server then records, rather than orphaning them.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with _api() as (client, env, claim_wait):
            try:
                found = client.request("GET", f"/work_pools/{_path(pool)}")
            except ObjectNotFound:
                raise ObjectNotFound(
                    f"No work pool named {pool!r}; create it with `headwater work-pool create "
                    f"{_quoted(pool)} --type process`."
                ) from None
            for queue_name in queue or []:  # a misspelt queue would just never have runs
                client.request("GET", f"/work_pools/{_path(pool)}/queues/{_path(queue_name)}")
            infrastructure = get_infrastructure(found["type"])()
            if env:
                from headwater.settings import get_settings
                from headwater.store.schema import display_url

                logger.info(
                    "No server configured (HEADWATER_API_URL): serving the API of %s at %s.",
                    display_url(get_settings().effective_database_url),
                    env["HEADWATER_API_URL"],
                )
            worker = Worker(
                client,
                infrastructure,
                work_pool=pool,
                work_queues=queue or [],
                name=name,
                limit=limit,
                heartbeat_interval=heartbeat_interval,
                claim_wait=claim_wait,
                env=env,
            )
            worker.run()
    except KeyboardInterrupt:
        logger.info("Worker stopped.")


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _configure_logging() -> None:
    """The worker's lines (`headwater.worker`, INFO and above) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


@contextlib.contextmanager
def _api() -> Iterator[tuple[ApiClient, dict[str, str], float]]:
    """(client, environment for the runs' processes, claim wait): the configured server, or
    a local one on the embedded store."""
    from headwater.client.api import ApiClient
    from headwater.settings import get_settings
    from headwater.worker.runner import CLAIM_WAIT

    settings = get_settings()
    if settings.api_url:
        client = ApiClient.connect(settings.api_url, api_key=settings.api_key or None)
        try:
            yield client, {}, CLAIM_WAIT
        finally:
            client.close()
        return
    from headwater.server.local import LocalServer

    server = LocalServer(settings)
    api_url = server.start()
    client = ApiClient.connect(api_url)
    try:
        yield client, {"HEADWATER_API_URL": api_url}, LOCAL_CLAIM_WAIT
    finally:
        client.close()
        server.stop()


def _path(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)


def register(app: typer.Typer) -> None:
    """Add the `worker` command group to `app`."""
    group = typer.Typer(no_args_is_help=True, help="Run a work pool's flow runs on this machine.")
    group.command("start")(start)
    app.add_typer(group, name="worker")
