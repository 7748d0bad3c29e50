"""Executes one claimed flow run: `python -m headwater.worker.execute`, started by a worker.

The worker passes, in the environment:

- HEADWATER_FLOW_RUN_ID: the run (32 hex digits), claimed by the worker;
- HEADWATER_CLAIM_TOKEN: the claim's fencing token, shown to `begin`;
- HEADWATER_ENTRYPOINT: where the flow is (`file.py:function`), relative to
  HEADWATER_ENTRYPOINT_DIR (the deployment's path) if set, else to the working directory;
- HEADWATER_DEPLOYMENT: JSON {id, name, version, parameters} for `runtime.deployment`;
- HEADWATER_WORKER_PID: the worker's pid; if the worker dies, this process kills
  itself (and its process group) so that the server's recovery decides the run's
  fate (Crashed, or retried per the flow's retries), not a half-orphaned process;
- HEADWATER_API_URL (and the rest of the settings) as for any Headwater process.

It loads the flow, begins the run (Pending -> Running; refused if the run was
cancelled or reclaimed meanwhile: then it exits 0 without running anything),
and runs the flow through the engine under the existing run's id. SIGUSR1
cancels the run: it is recorded Cancelled and `on_cancellation` hooks run.
Exit code 0 when the run completed, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from headwater.exceptions import CancelSignal

#: Seconds between two checks that the worker is alive.
WATCH_INTERVAL = 0.5


def _cancel(signum: int, _frame: Any) -> NoReturn:
    raise CancelSignal(f"Cancelled: the worker asked the process to stop (signal {signum}).")


def _watch_worker(pid: int) -> None:
    """Kill this process group as soon as the worker `pid` is gone.

    A process started by the worker itself sees its parent change when the
    worker dies (even before the dead worker is reaped); one started through
    a wrapper command checks the worker's pid.
    """
    started_by_worker = os.getppid() == pid

    def gone() -> bool:
        if started_by_worker:
            return os.getppid() != pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def watch() -> None:
        while not gone():
            time.sleep(WATCH_INTERVAL)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="headwater-worker-watch", daemon=True).start()


def execute(environ: dict[str, str] | os._Environ[str] = os.environ, *, watch: bool = True) -> int:
    """Run the claimed flow run the environment names; the process's exit code."""
    from headwater.client.api import get_client
    from headwater.core.ids import uuid7_hex
    from headwater.deployments.entrypoints import load_flow_from_entrypoint
    from headwater.engine.crash import current_process_tag
    from headwater.exceptions import Conflict

    run_id = environ["HEADWATER_FLOW_RUN_ID"]
    token = environ["HEADWATER_CLAIM_TOKEN"]
    entrypoint = environ["HEADWATER_ENTRYPOINT"]
    worker_pid = int(environ.get("HEADWATER_WORKER_PID") or 0)
    if worker_pid and watch:
        _watch_worker(worker_pid)
    client = get_client()
    base = environ.get("HEADWATER_ENTRYPOINT_DIR") or None
    try:
        flow = load_flow_from_entrypoint(entrypoint, Path(base) if base else None)
    except BaseException as exc:  # any error of the user's module fails the run, not the worker
        client.request(
            "POST",
            f"/flow_runs/{run_id}/set_state",
            json={
                "type": "FAILED",
                "id": uuid7_hex(),
                "message": f"Cannot load the flow from entrypoint {entrypoint!r}: "
                f"{type(exc).__name__}: {exc}",
            },
        )
        print(f"Cannot load the flow from entrypoint {entrypoint!r}: {exc}", file=sys.stderr)
        return 1
    delays = flow.retry_policy.delays
    try:
        run = client.request(
            "POST",
            f"/flow_runs/{run_id}/begin",
            json={
                "claim_token": token,
                "retries": flow.retries,
                "retry_delay_seconds": float(delays[0]) if delays else 0.0,
                "process": current_process_tag(),
            },
        )
    except Conflict as exc:
        print(f"Flow run {run_id} not started: {exc}", file=sys.stderr)
        return 0
    _set_deployment(environ.get("HEADWATER_DEPLOYMENT"))
    return _run(flow, run)


def _set_deployment(document: str | None) -> None:
    if document:
        from headwater.runtime import deployment

        deployment.set_current(json.loads(document))


def _run(flow: Any, run: dict[str, Any]) -> int:
    import datetime as dt

    from headwater.engine.flow_engine import AdoptedRun, run_flow_async, run_flow_sync

    def hex_or_none(value: str | None) -> str | None:
        return None if value is None else value.replace("-", "")

    expected = run.get("expected_start_time")
    adopt = AdoptedRun(
        hex_id=run["id"].replace("-", ""),
        name=run["name"],
        tags=list(run.get("tags") or []),
        run_count=int(run["run_count"]),
        started=dt.datetime.fromisoformat(run["state_timestamp"]).timestamp(),
        deployment_hex=hex_or_none(run.get("deployment_id")),
        expected_start_time=dt.datetime.fromisoformat(expected).timestamp() if expected else None,
        parent_flow_run_hex=hex_or_none(run.get("parent_flow_run_id")),
        root_flow_run_hex=hex_or_none(run.get("root_flow_run_id")),
        parent_task_run_hex=hex_or_none(run.get("parent_task_run_id")),
    )
    parameters = dict(run.get("parameters") or {})
    signal.signal(signal.SIGUSR1, _cancel)
    try:
        if flow.is_async:
            import asyncio

            state = asyncio.run(run_flow_async(flow, (), parameters, True, adopt))
        else:
            state = run_flow_sync(flow, (), parameters, True, adopt)
    except CancelSignal:
        return 1
    finally:
        # The run is settled: a late cancellation must not interrupt the exit.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    return 0 if state.is_completed() else 1


def _wait_for_run() -> int:
    """`--wait`: import what a run needs, then take the run from stdin (a JSON line with
    `env`, `cwd` and `stream_output`); exit 0 if stdin closes without one."""
    import tomllib  # noqa: F401  (settings)

    import headwater.client._http
    import headwater.client.api
    import headwater.deployments.entrypoints
    import headwater.engine.flow_engine
    import headwater.engine.recorder
    import headwater.engine.task_engine
    import headwater.logging.run_logger
    import headwater.worker.infrastructure  # noqa: F401  (pydantic)

    with contextlib.suppress(ImportError):
        import httpx

        httpx.Client(verify=False).close()  # imports httpcore and h11

    worker_pid = int(os.environ.get("HEADWATER_WORKER_PID") or 0)
    if worker_pid:
        _watch_worker(worker_pid)
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return 0
    job = json.loads(line)
    os.environ.update(job.get("env") or {})
    if job.get("cwd"):
        os.chdir(job["cwd"])
    if not job.get("stream_output", True):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    return execute(os.environ, watch=False)


def main() -> None:
    if sys.argv[1:] == ["--wait"]:
        sys.exit(_wait_for_run())
    sys.exit(execute())


if __name__ == "__main__":
    main()
