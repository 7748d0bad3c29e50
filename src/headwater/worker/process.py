"""The `process` infrastructure: each flow run in a subprocess of the worker.

The subprocess runs `python -m headwater.worker.execute` (or the job's
`command`) in its own session, so that stopping it stops whatever it started.
Cancelling asks it to stop with SIGUSR1 (the run records Cancelled and runs
its `on_cancellation` hooks), then kills the whole process group after the
grace period.

Start latency: a fresh interpreter needs ~0.2 s to import Headwater, pydantic
and httpx before the flow can begin. So the infrastructure keeps one spare
process that has imported them and waits on its stdin; a run without a
custom `command` is handed to the spare (its environment, working directory
and output settings are applied first), and a new spare is started for the
next run. The spare imports no user code and reads no settings before it
gets its run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from headwater.worker.infrastructure import (
    PROCESS_JOB_CONFIGURATION,
    Handle,
    Infrastructure,
    ProcessVariables,
)

#: The signal that asks a flow run's process to cancel its run.
CANCEL_SIGNAL = signal.SIGUSR1


class ProcessHandle:
    """A flow run's subprocess."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @property
    def identifier(self) -> str:
        return f"{socket.gethostname()}:{self.process.pid}"

    def poll(self) -> int | None:
        return self.process.poll()


def default_command() -> list[str]:
    """The command that executes a claimed run: this Python, Headwater's runner module."""
    return [sys.executable, "-m", "headwater.worker.execute"]


class ProcessInfrastructure(Infrastructure):
    """Runs each flow run in a local subprocess.

    Args:
        prewarm: keep a spare process with Headwater imported, for the next run
            (see the module docstring); False starts each run's process from scratch.
    """

    type = "process"
    Variables = ProcessVariables
    job_configuration = PROCESS_JOB_CONFIGURATION

    def __init__(self, *, prewarm: bool = True) -> None:
        self.prewarm = prewarm
        self._spare: subprocess.Popen[bytes] | None = None
        self._spare_lock = threading.Lock()

    def start(self, flow_run_id: str, configuration: dict[str, Any], env: dict[str, str]) -> Handle:
        command = configuration.get("command")
        working_dir = configuration.get("working_dir") or None
        stream_output = bool(configuration.get("stream_output", True))
        run_env = {**(configuration.get("env") or {}), **env}
        if not command and self.prewarm:
            spare = self._take_spare()
            if spare is not None:
                job = {"env": run_env, "cwd": working_dir, "stream_output": stream_output}
                try:
                    assert spare.stdin is not None
                    spare.stdin.write(json.dumps(job).encode() + b"\n")
                    spare.stdin.close()
                except (BrokenPipeError, OSError):
                    pass  # the spare died meanwhile: start from scratch below
                else:
                    self._refill(env)
                    return ProcessHandle(spare)
        argv = shlex.split(command) if command else default_command()
        output = None if stream_output else subprocess.DEVNULL
        process = subprocess.Popen(
            argv,
            env={**os.environ, **run_env},
            cwd=working_dir,
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own process group: killed as one
        )
        if self.prewarm and not command:
            self._refill(env)
        return ProcessHandle(process)

    def _take_spare(self) -> subprocess.Popen[bytes] | None:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None and spare.poll() is not None:
            return None
        return spare

    def warm_up(self, env: dict[str, str]) -> None:
        """Start a spare now, so that even the first run starts fast."""
        if self.prewarm:
            self._refill(env)

    def _refill(self, env: dict[str, str]) -> None:
        """Start the next spare in the background (the worker's pid goes with it)."""
        base = {k: v for k, v in env.items() if k == "HEADWATER_WORKER_PID"}

        def start() -> None:
            spare = subprocess.Popen(
                [*default_command(), "--wait"],
                env={**os.environ, **base},
                stdin=subprocess.PIPE,
                start_new_session=True,
            )
            with self._spare_lock:
                previous, self._spare = self._spare, spare
            if previous is not None:
                _discard(previous)

        threading.Thread(target=start, name="headwater-spare", daemon=True).start()

    def close(self) -> None:
        """Stop the spare process, if any."""
        spare = self._take_spare()
        if spare is not None:
            _discard(spare)

    def kill(self, handle: Handle, grace_seconds: float) -> None:
        assert isinstance(handle, ProcessHandle)
        process = handle.process
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(CANCEL_SIGNAL)
        deadline = time.monotonic() + grace_seconds
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


def _discard(spare: subprocess.Popen[bytes]) -> None:
    """End a spare that got no run: closing its stdin makes it exit."""
    with contextlib.suppress(OSError):
        if spare.stdin is not None:
            spare.stdin.close()
    try:
        spare.wait(5)
    except subprocess.TimeoutExpired:
        spare.kill()
        spare.wait()
