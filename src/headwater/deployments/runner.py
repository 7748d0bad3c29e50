"""Deployments from code: `flow.to_deployment()`, `flow.serve()`, `serve()`, `flow.deploy()`.

`serve` registers deployments without a work pool and runs them itself: it
long-polls the server for their due runs and starts each in a subprocess.
`deploy` registers deployments on a work pool, for the pool's workers.

With no server configured (no HEADWATER_API_URL), `serve` starts the API
in its own process on the embedded store (with the scheduler and the other
services), so `python flows.py` alone runs a schedule.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.exceptions import ConfigurationError

if TYPE_CHECKING:
    import datetime as dt

    from headwater.client.api import ApiClient
    from headwater.flows import Flow
    from headwater.sensors import Sensor

logger = logging.getLogger("headwater.serve")

__all__ = ["RunnerDeployment", "aserve", "deploy", "serve"]


@dataclasses.dataclass
class RunnerDeployment:
    """A deployment described in code, registered by `serve()` or `deploy()`.

    Build it with `flow.to_deployment(name, ...)`.
    """

    name: str
    flow: Flow[Any, Any]
    entrypoint: str
    path: str
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    schedules: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    version: str | None = None
    description: str | None = None
    paused: bool = False
    concurrency_limit: int | None = None
    collision_strategy: str = "ENQUEUE"
    enforce_parameter_schema: bool = True
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.name}"

    def body(self) -> dict[str, Any]:
        """The `POST /api/deployments` body."""
        from headwater.engine.parameters import jsonable

        return {
            "name": self.name,
            "flow_name": self.flow.name,
            "version": self.version,
            "description": self.description,
            "entrypoint": self.entrypoint,
            "path": self.path,
            "parameters": jsonable(self.parameters),
            "parameter_schema": self.flow.validator.json_schema(),
            "enforce_parameter_schema": self.enforce_parameter_schema,
            "tags": self.tags,
            "work_pool_name": self.work_pool_name,
            "work_queue_name": self.work_queue_name,
            "job_variables": self.job_variables,
            "concurrency_limit": self.concurrency_limit,
            "collision_strategy": self.collision_strategy,
            "paused": self.paused,
            "schedules": self.schedules,
        }

    def apply(self, client: ApiClient) -> str:
        """Create or update the deployment on the server; its id."""
        answer = client.request("POST", "/deployments", json=self.body())
        return str(answer["id"])


def to_deployment(
    flow: Flow[Any, Any],
    name: str | None = None,
    *,
    cron: str | Sequence[str] | None = None,
    interval: float | dt.timedelta | Sequence[float | dt.timedelta] | None = None,
    rrule: str | Sequence[str] | None = None,
    anchor_date: dt.datetime | None = None,
    timezone: str | None = None,
    schedules: Sequence[Any] | None = None,
    parameters: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    version: str | None = None,
    description: str | None = None,
    paused: bool = False,
    concurrency_limit: int | Any | None = None,
    enforce_parameter_schema: bool = True,
    work_pool_name: str | None = None,
    work_queue_name: str | None = None,
    job_variables: dict[str, Any] | None = None,
    entrypoint: str | None = None,
    path: str | Path | None = None,
) -> RunnerDeployment:
    """A `RunnerDeployment` of `flow`; see `Flow.to_deployment`."""
    from headwater.deployments.entrypoints import entrypoint_of
    from headwater.schedules import construct_schedules

    working_directory = Path(path).resolve() if path is not None else Path.cwd()
    if parameters:
        unknown = set(parameters) - set(flow.signature.parameters)
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in flow.signature.parameters.values()):
            raise ConfigurationError(
                f"Flow {flow.name!r} has no parameter(s) {sorted(unknown)}; its parameters "
                f"are {list(flow.signature.parameters)}."
            )
    limit, strategy = _concurrency(concurrency_limit)
    return RunnerDeployment(
        name=name or flow.name,
        flow=flow,
        entrypoint=entrypoint or entrypoint_of(flow, working_directory),
        path=str(working_directory),
        parameters=dict(parameters or {}),
        schedules=construct_schedules(
            cron=cron,
            interval=interval,
            rrule=rrule,
            anchor_date=anchor_date,
            timezone=timezone,
            schedules=schedules,
        ),
        tags=list(tags or []),
        version=version or flow.version,
        description=description or flow.description,
        paused=paused,
        concurrency_limit=limit,
        collision_strategy=strategy,
        enforce_parameter_schema=enforce_parameter_schema,
        work_pool_name=work_pool_name,
        work_queue_name=work_queue_name,
        job_variables=dict(job_variables or {}),
    )


def _concurrency(value: Any) -> tuple[int | None, str]:
    """`concurrency_limit` as (limit, collision strategy): an int, or an object or dict with
    `limit` and `collision_strategy` (Prefect's ConcurrencyLimitConfig)."""
    if value is None or isinstance(value, int):
        return value, "ENQUEUE"
    if isinstance(value, dict):
        limit, strategy = value.get("limit"), value.get("collision_strategy", "ENQUEUE")
    else:
        limit = getattr(value, "limit", None)
        strategy = getattr(value, "collision_strategy", "ENQUEUE")
    strategy = str(getattr(strategy, "value", strategy)).upper()
    if not isinstance(limit, int) or strategy not in ("ENQUEUE", "CANCEL_NEW"):
        raise ConfigurationError(
            f"concurrency_limit {value!r}: give an int, or limit (an int) and "
            "collision_strategy ('ENQUEUE' or 'CANCEL_NEW')."
        )
    return limit, strategy


def serve(
    *deployments: RunnerDeployment | Sensor,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    print_starting_message: bool = True,
) -> None:
    """Register `deployments` and run their runs in subprocesses until Ctrl-C; sensors
    (`@sensor` functions) given among them are checked in threads of this process.

    Args:
        limit: most runs at once (None: no limit).
        pause_on_shutdown: pause the deployments when serving stops, so that
            their schedules do not pile up runs nobody will execute.
    """
    from headwater.sensors import Sensor, serving

    sensors = [item for item in deployments if isinstance(item, Sensor)]
    runner_deployments = [item for item in deployments if not isinstance(item, Sensor)]
    if not deployments:
        raise ConfigurationError(
            "serve() needs at least one deployment (flow.to_deployment(...)) or sensor (@sensor)."
        )
    for item in runner_deployments:
        if item.work_pool_name is not None:
            raise ConfigurationError(
                f"Deployment {item.full_name!r} names work pool {item.work_pool_name!r}; "
                "serve() runs deployments itself: use flow.deploy() for a work pool."
            )
    from headwater.worker.process import ProcessInfrastructure
    from headwater.worker.runner import Worker

    with _api() as (client, env):
        ids = [item.apply(client) for item in runner_deployments]
        if print_starting_message:
            _print_starting_message(runner_deployments, sensors)
        try:
            with serving(sensors) as stopped:
                if runner_deployments:
                    worker = Worker(
                        client,
                        ProcessInfrastructure(),
                        deployment_ids=ids,
                        limit=limit,
                        env=env,
                    )
                    worker.run()
                else:
                    while not stopped.wait(SENSORS_ONLY_WAIT):
                        pass
        except KeyboardInterrupt:
            pass
        finally:
            if pause_on_shutdown:
                for deployment_id in ids:
                    try:
                        client.request("POST", f"/deployments/{deployment_id}/pause")
                    except Exception as exc:  # the server may be gone already
                        logger.warning("Could not pause deployment %s: %s", deployment_id, exc)


#: With only sensors to serve, how often the main thread wakes (Ctrl-C is seen at once).
SENSORS_ONLY_WAIT = 0.2


def _print_starting_message(deployments: list[RunnerDeployment], sensors: list[Sensor]) -> None:
    parts = []
    if deployments:
        parts.append(", ".join(repr(item.full_name) for item in deployments))
    if sensors:
        parts.append(
            "sensor(s) "
            + ", ".join(f"{item.name!r} (every {item.interval:g}s)" for item in sensors)
        )
    hint = ""
    if deployments:
        hint = f" Start a run with `headwater deployment run '{deployments[0].full_name}'`;"
    print(
        f"Serving {' and '.join(parts)}.{hint} Ctrl-C stops.",
        file=sys.stderr,
        flush=True,
    )


async def aserve(
    *deployments: RunnerDeployment | Sensor,
    limit: int | None = None,
    pause_on_shutdown: bool = True,
    print_starting_message: bool = True,
) -> None:
    """`serve()` for async code: serves in a thread without blocking the event loop."""
    import asyncio

    await asyncio.to_thread(
        serve,
        *deployments,
        limit=limit,
        pause_on_shutdown=pause_on_shutdown,
        print_starting_message=print_starting_message,
    )


def deploy(*deployments: RunnerDeployment, work_pool_name: str | None = None) -> list[str]:
    """Register `deployments` on a work pool (given here or on each); their ids.

    The pool's workers run them; nothing runs in this process.
    """
    from headwater.client.api import get_client

    client = get_client()
    ids = []
    for item in deployments:
        pool = item.work_pool_name or work_pool_name
        if pool is None:
            raise ConfigurationError(
                f"Deployment {item.full_name!r} has no work pool: give work_pool_name (create "
                "one with `headwater work-pool create NAME --type process`), or serve it."
            )
        item.work_pool_name = pool
        ids.append(item.apply(client))
    return ids


class _api:
    """The API `serve` talks to: the configured server, or one started here on the embedded
    store. Yields (client, environment for the runs' processes)."""

    def __enter__(self) -> tuple[ApiClient, dict[str, str]]:
        from headwater.client.api import ApiClient
        from headwater.settings import get_settings

        settings = get_settings()
        self._server: Any = None
        if settings.api_url:
            client = ApiClient.connect(settings.api_url, api_key=settings.api_key or None)
            self._client = client
            return client, {}
        from headwater.server.local import LocalServer

        self._server = LocalServer(settings)
        api_url = self._server.start()
        logger.info("No server configured: serving the API of %s at %s", settings.home, api_url)
        client = ApiClient.connect(api_url)
        self._client = client
        return client, {"HEADWATER_API_URL": api_url}

    def __exit__(self, *exc: object) -> None:
        self._client.close()
        if self._server is not None:
            self._server.stop()
