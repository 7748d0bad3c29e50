"""`headwater deploy`: register deployments of flows on work pools, for their workers.

`deploy ENTRYPOINT --name N --pool P ...` imports the user's flow file (to read
its name and signature) and registers one deployment; without ENTRYPOINT, the
deployments `headwater.yaml` describes (`deployment_file.py`). Registering
goes through `get_client()`: the server at HEADWATER_API_URL, or the embedded
store's API in this process. Module-level imports stay light (typer and the
standard library).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.session import handle_errors
from headwater.exceptions import ConfigurationError

if TYPE_CHECKING:
    from rich.console import Console

    from headwater.deployments.runner import RunnerDeployment
    from headwater.flows import Flow

ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="A parameter (repeat for several). VALUE is read as JSON when it is JSON "
        "(n=5 is a number, flags=[1,2] a list), else as text (day=2026-11-20).",
        show_default=False,
    ),
]
ParamsOption = Annotated[
    str | None,
    typer.Option(
        "--params",
        metavar="JSON",
        help='Parameters as one JSON object, e.g. \'{"day": "2026-11-20"}\'; --param values '
        "override its keys.",
        show_default=False,
    ),
]
JobVariableOption = Annotated[
    list[str] | None,
    typer.Option(
        "--job-variable",
        "-jv",
        metavar="KEY=VALUE",
        help="A job variable of the work pool's infrastructure, e.g. "
        'env=\'{"LOG": "debug"}\' or working_dir=/srv/etl (VALUE as for --param).',
        show_default=False,
    ),
]

# -- parsing ---------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses as JSON, else the text itself.

    Example:
        >>> parse_value("5"), parse_value("2026-11-20"), parse_value('"007"')
        (5, '2026-11-20', '007')
    """
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError:
        return text


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")  # NaN, Infinity: keep the text


def parse_assignments(values: list[str] | None, option: str) -> dict[str, Any]:
    """`KEY=VALUE` options as a dict (values through `parse_value`)."""
    found: dict[str, Any] = {}
    for item in values or []:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ConfigurationError(
                f"Invalid {option} {item!r}: write KEY=VALUE, e.g. {option} day=2026-11-20."
            )
        found[key] = parse_value(value)
    return found


def parse_parameters(params: str | None, param: list[str] | None) -> dict[str, Any]:
    """`--params JSON` updated with the `--param KEY=VALUE` values."""
    parameters: dict[str, Any] = {}
    if params is not None:
        try:
            parameters = json.loads(params)
        except ValueError as exc:
            raise ConfigurationError(f"--params is not valid JSON ({exc}): {params!r}.") from None
        if not isinstance(parameters, dict):
            raise ConfigurationError(
                f'--params must be a JSON object such as \'{{"day": "today"}}\', not {params!r}.'
            )
    parameters.update(parse_assignments(param, "--param"))
    return parameters


def _iso(text: str, option: str) -> str:
    """`text`, checked to be an ISO 8601 date/time."""
    parse_moment(text, option)
    return text.strip()


def parse_moment(text: str, option: str) -> dt.datetime:
    """An ISO 8601 date/time; without an offset, local time."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"Invalid {option} {text!r}: use an ISO date/time such as 2026-11-20T02:00 "
            "(local time) or 2026-11-20T02:00+01:00."
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


@handle_errors
def deploy(
    entrypoint: Annotated[
        str | None,
        typer.Argument(
            metavar="[ENTRYPOINT]",
            help="The flow: 'path/to/file.py:function', relative to the current directory. "
            "Without it, deploy what headwater.yaml describes.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            "-n",
            metavar="NAME",
            help="The deployment's name (default: the flow's). With headwater.yaml: deploy "
            "only the deployments of this name.",
            show_default=False,
        ),
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool",
            metavar="NAME",
            help="The work pool whose workers run it (required).",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            metavar="NAME",
            help="The pool's work queue (default: 'default').",
            show_default=False,
        ),
    ] = None,
    cron: Annotated[
        list[str] | None,
        typer.Option(
            metavar="EXPR",
            help="A cron schedule, e.g. '0 2 * * *' (repeat for several).",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        list[float] | None,
        typer.Option(
            metavar="SECONDS",
            min=0.001,
            help="An interval schedule (repeat for several).",
            show_default=False,
        ),
    ] = None,
    rrule: Annotated[
        list[str] | None,
        typer.Option(
            metavar="RULE",
            help="An RFC 5545 recurrence rule, e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'.",
            show_default=False,
        ),
    ] = None,
    anchor_date: Annotated[
        str | None,
        typer.Option(
            metavar="ISO",
            help="The time --interval runs are aligned to, e.g. 2026-01-01T09:00 (without an "
            "offset: local time in --timezone; default 2020-01-01 00:00).",
            show_default=False,
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            metavar="TZ",
            help="IANA timezone of the schedules (default UTC), e.g. Europe/Paris.",
            show_default=False,
        ),
    ] = None,
    param: ParamOption = None,
    params: ParamsOption = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            "-t",
            metavar="TAG",
            help="A tag of the deployment and its runs (repeat).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version", metavar="VERSION", help="The deployment's version.", show_default=False
        ),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help="The deployment's description (default: the flow's docstring).",
            show_default=False,
        ),
    ] = None,
    concurrency_limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Runs of this deployment that may run at once.",
            show_default=False,
        ),
    ] = None,
    collision_strategy: Annotated[
        str | None,
        typer.Option(
            metavar="STRATEGY",
            help="When the concurrency limit is reached: 'enqueue' (wait; the default) or "
            "'cancel-new' (cancel the new run).",
            show_default=False,
        ),
    ] = None,
    job_variable: JobVariableOption = None,
    paused: Annotated[
        bool, typer.Option("--paused", help="Create it paused: no scheduled runs until resumed.")
    ] = False,
    deploy_all: Annotated[
        bool, typer.Option("--all", help="Deploy every deployment headwater.yaml describes.")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="The deployment file to read instead of ./headwater.yaml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Register a deployment of a flow on a work pool, for the pool's workers to run.

    Example: `headwater deploy flows/etl.py:nightly --name nightly --pool etl
    --cron "0 2 * * *"`. Without ENTRYPOINT (or with --all), deploy the
    deployments of headwater.yaml. Deploying again under the same name updates
    the deployment and replaces its schedules.
    """
    from headwater.client.api import get_client

    if entrypoint is None or deploy_all:
        given = {
            "--pool": pool,
            "--queue": queue,
            "--cron": cron,
            "--interval": interval,
            "--rrule": rrule,
            "--anchor-date": anchor_date,
            "--timezone": timezone,
            "--param": param,
            "--params": params,
            "--tag": tag,
            "--version": version,
            "--description": description,
            "--concurrency-limit": concurrency_limit,
            "--collision-strategy": collision_strategy,
            "--job-variable": job_variable,
            "--paused": paused or None,
        }
        extra = [option for option, value in given.items() if value]
        if entrypoint is not None:
            extra.insert(0, "ENTRYPOINT")
        if extra:
            raise ConfigurationError(
                f"{', '.join(extra)} apply to one ENTRYPOINT; with a deployment file, write "
                "them in the file (see docs/deployments.md)."
            )
        deployments = _from_file(file or Path("headwater.yaml"), name, explicit=file is not None)
    else:
        if file is not None:
            raise ConfigurationError(
                f"Give ENTRYPOINT or --file, not both ({entrypoint!r} and {str(file)!r})."
            )
        deployments = [
            _from_options(
                entrypoint,
                name=name,
                pool=pool,
                queue=queue,
                cron=cron,
                interval=interval,
                rrule=rrule,
                anchor_date=anchor_date,
                timezone=timezone,
                parameters=parse_parameters(params, param),
                tags=tag,
                version=version,
                description=description,
                concurrency_limit=concurrency_limit,
                collision_strategy=collision_strategy,
                job_variables=parse_assignments(job_variable, "--job-variable"),
                paused=paused,
            )
        ]
    client = get_client()
    registered = [client.request("GET", f"/deployments/{d.apply(client)}") for d in deployments]
    from headwater.cli.output import console

    out = console()
    for index, document in enumerate(registered):
        if index:
            out.print()
        _print_registered(out, document)


def _from_options(
    entrypoint: str,
    *,
    name: str | None,
    pool: str | None,
    queue: str | None,
    cron: list[str] | None,
    interval: list[float] | None,
    rrule: list[str] | None,
    anchor_date: str | None,
    timezone: str | None,
    parameters: dict[str, Any],
    tags: list[str] | None,
    version: str | None,
    description: str | None,
    concurrency_limit: int | None,
    collision_strategy: str | None,
    job_variables: dict[str, Any],
    paused: bool,
) -> RunnerDeployment:
    if pool is None:
        raise ConfigurationError(
            "Give the work pool whose workers run the deployment: --pool NAME (create one with "
            "`headwater work-pool create NAME --type process`); or run the flow's own process "
            "with flow.serve() instead."
        )
    if timezone is not None and not (cron or interval or rrule):
        raise ConfigurationError(
            f"--timezone {timezone} applies to schedules: give --cron, --interval or --rrule."
        )
    strategy = _collision_strategy(collision_strategy, concurrency_limit)
    limit: Any = concurrency_limit
    if concurrency_limit is not None:
        limit = {"limit": concurrency_limit, "collision_strategy": strategy}
    working_directory = Path.cwd()
    flow = load_flow(entrypoint, working_directory)
    return build_deployment(
        flow,
        name or flow.name,
        entrypoint=entrypoint,
        path=working_directory,
        cron=cron,
        interval=interval,
        rrule=rrule,
        # As text: without an offset it is local time in the schedules' timezone.
        anchor_date=_iso(anchor_date, "--anchor-date") if anchor_date else None,
        timezone=timezone,
        parameters=parameters,
        tags=tags,
        version=version,
        description=description,
        concurrency_limit=limit,
        work_pool_name=pool,
        work_queue_name=queue,
        job_variables=job_variables,
        paused=paused,
    )


def _collision_strategy(value: str | None, limit: int | None) -> str:
    if value is None:
        return "ENQUEUE"
    strategy = value.strip().upper().replace("-", "_")
    if strategy not in ("ENQUEUE", "CANCEL_NEW"):
        raise ConfigurationError(
            f"Unknown --collision-strategy {value!r}: use 'enqueue' or 'cancel-new'."
        )
    if limit is None:
        raise ConfigurationError(
            "--collision-strategy applies with a --concurrency-limit: give the limit too."
        )
    return strategy


def load_flow(entrypoint: str, working_directory: Path) -> Flow[Any, Any]:
    """The flow `entrypoint` names; an error in the user's file becomes one readable line."""
    import traceback

    from headwater.deployments.entrypoints import load_flow_from_entrypoint

    try:
        return load_flow_from_entrypoint(entrypoint, working_directory)
    except ConfigurationError:
        raise
    except Exception as exc:
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({exc.filename}, line {exc.lineno})"
        else:
            frames = traceback.extract_tb(exc.__traceback__)
            if frames:
                where = f" ({frames[-1].filename}, line {frames[-1].lineno})"
        raise ConfigurationError(
            f"Cannot load the flow of entrypoint {entrypoint!r}: {type(exc).__name__}: "
            f"{exc}{where}."
        ) from None


def build_deployment(flow: Flow[Any, Any], name: str, **options: Any) -> RunnerDeployment:
    """`flow.to_deployment(name, **options)`, its ValueErrors (bad schedules) as one line."""
    try:
        return flow.to_deployment(name, **options)
    except ConfigurationError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"Deployment {f'{flow.name}/{name}'!r}: {exc}.") from None


def _from_file(path: Path, name: str | None, *, explicit: bool) -> list[RunnerDeployment]:
    from headwater.cli.deployment_file import read_deployment_file

    if not path.is_file():
        if explicit:
            raise ConfigurationError(f"No deployment file {str(path)!r}.")
        raise ConfigurationError(
            "Give an ENTRYPOINT ('path/to/file.py:function'), or describe deployments in "
            "headwater.yaml in the current directory (see docs/deployments.md)."
        )
    entries = read_deployment_file(path)
    if name is not None:
        chosen = [entry for entry in entries if entry.name == name]
        if not chosen:
            names = ", ".join(repr(entry.name) for entry in entries)
            raise ConfigurationError(f"{path} has no deployment named {name!r}; it has {names}.")
        entries = chosen
    base = path.resolve().parent
    deployments = []
    for entry in entries:  # every flow loads and checks before any deployment is registered
        flow = load_flow(entry.entrypoint, base)
        deployments.append(
            build_deployment(
                flow, entry.name, entrypoint=entry.entrypoint, path=base, **entry.options
            )
        )
    return deployments


def _print_registered(out: Console, document: dict[str, Any]) -> None:
    import shlex

    from rich.text import Text

    from headwater.cli.deployments import describe_schedule, next_run_times
    from headwater.cli.output import local_time

    full_name = f"{document['flow_name']}/{document['name']}"
    out.print(
        Text.assemble(
            "Deployment ",
            (repr(full_name), "bold"),
            f" is registered (id {document['id']}) on work pool "
            f"{document['work_pool_name']!r}, queue {document['work_queue_name']!r}"
            f"{' (paused)' if document['paused'] else ''}.",
        )
    )
    schedules = document["schedules"]
    if not schedules:
        out.print("No schedules: runs start when asked for.")
    for schedule in schedules:
        upcoming = next_run_times(schedule, count=1)
        when = f"; next run {local_time(upcoming[0])}" if upcoming else ""
        out.print(Text(f"Schedule: {describe_schedule(schedule)}{when}"))
    pool = shlex.quote(document["work_pool_name"])
    out.print(
        Text(
            f"Run it: headwater deployment run {shlex.quote(full_name)}  "
            f"(a worker runs it: headwater worker start --pool {pool})"
        ),
        style="dim",
    )


def register(app: typer.Typer) -> None:
    """Add the `deploy` command to `app`."""
    app.command("deploy")(deploy)
