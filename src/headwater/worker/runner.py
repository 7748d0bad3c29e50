"""The worker loop, shared by `headwater worker start` (a work pool) and `flow.serve()`.

One loop, in the calling thread:

1. long-poll the server for due runs (`get_scheduled_flow_runs`, woken by
   notifications, so a run created now is claimed within milliseconds);
2. start each claimed run on the infrastructure (a subprocess for `process`);
3. stop the runs the server says are being cancelled.

Two daemon threads help: one heartbeats (the server recovers the runs of a
worker whose heartbeats stop), one reaps finished processes and reports how
each ended (a run that did not settle itself crashed, or is retried).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from headwater.client.api import ApiClient, ServerUnavailable
from headwater.exceptions import HeadwaterError
from headwater.worker.infrastructure import Handle, Infrastructure

logger = logging.getLogger("headwater.worker")

#: Seconds a claim request stays open waiting for a due run.
CLAIM_WAIT = 10.0
#: Seconds between two reaps of finished processes.
REAP_INTERVAL = 0.05


def default_name(prefix: str = "worker") -> str:
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}"


class Worker:
    """Claims and runs the flow runs of a work pool, or of given deployments (`serve`).

    Args:
        client: the API to claim from.
        infrastructure: starts and stops the runs' processes.
        work_pool: the pool's name; None for `serve`, which gives `deployment_ids`.
        limit: most runs at once (None: no limit).
        env: environment for every run's process, on top of the worker's.
    """

    def __init__(
        self,
        client: ApiClient,
        infrastructure: Infrastructure,
        *,
        work_pool: str | None = None,
        work_queues: Sequence[str] = (),
        deployment_ids: Sequence[str] = (),
        name: str | None = None,
        limit: int | None = None,
        heartbeat_interval: float = 10.0,
        cancel_grace: float = 10.0,
        claim_wait: float = CLAIM_WAIT,
        env: dict[str, str] | None = None,
    ) -> None:
        if work_pool is None and not deployment_ids:
            raise ValueError("A worker needs a work pool, or deployments to serve.")
        self.client = client
        self.infrastructure = infrastructure
        self.work_pool = work_pool
        self.work_queues = list(work_queues)
        self.deployment_ids = [str(i) for i in deployment_ids]
        self.name = name or default_name("serve" if work_pool is None else "worker")
        self.limit = limit
        self.heartbeat_interval = heartbeat_interval
        self.cancel_grace = cancel_grace
        self.claim_wait = claim_wait
        self.env = dict(env or {})
        self.worker_id: str | None = None
        self._running: dict[str, Handle] = {}
        self._names: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._cancelling: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------

    def run(self) -> None:
        """Claim and run flow runs until `stop()` (or Ctrl-C)."""
        self._heartbeat()
        warm_up = getattr(self.infrastructure, "warm_up", None)
        if warm_up is not None:
            warm_up({"HEADWATER_WORKER_PID": str(os.getpid())})
        self._spawn(self._heartbeat_loop, "heartbeat")
        self._spawn(self._reap_loop, "reaper")
        where = (
            f"work pool {self.work_pool!r}"
            if self.work_pool
            else (f"{len(self.deployment_ids)} deployment(s)")
        )
        logger.info("Worker %r started; waiting for runs of %s.", self.name, where)
        try:
            while not self._stop.is_set():
                self._poll_once()
        finally:
            self._stop.set()
            self._shutdown()

    def stop(self) -> None:
        self._stop.set()

    def _spawn(self, target: Any, role: str) -> None:
        thread = threading.Thread(target=target, name=f"headwater-worker-{role}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _shutdown(self) -> None:
        """Stop the runs still executing, as a cancellation does: they record Cancelled and
        run their `on_cancellation` hooks (killed after the grace period)."""
        with self._lock:
            running = dict(self._running)
        for run_id, handle in running.items():
            logger.warning(
                "Worker stopping: stopping flow run %s (%s).",
                self._label(run_id),
                handle.identifier,
            )
            with contextlib.suppress(Exception):
                self.infrastructure.kill(handle, self.cancel_grace)
        close = getattr(self.infrastructure, "close", None)
        if close is not None:
            close()
        for thread in self._threads:
            thread.join(2.0)
        self._reap()

    # -- claiming ----------------------------------------------------------------------

    def _claim_path(self) -> str:
        if self.work_pool is not None:
            return f"/work_pools/{quote(self.work_pool, safe='')}/get_scheduled_flow_runs"
        return "/deployments/get_scheduled_flow_runs"

    def _poll_once(self) -> None:
        with self._lock:
            running = list(self._running)
        free = 10 if self.limit is None else max(0, self.limit - len(running))
        wait = self.claim_wait if free else 1.0
        body: dict[str, Any] = {
            "worker_id": self.worker_id,
            "limit": free,
            "wait": wait,
            "running": running,
            "work_queue_names": self.work_queues,
            "deployment_ids": self.deployment_ids,
        }
        try:
            answer = self.client.request("POST", self._claim_path(), json=body, timeout=wait + 30)
        except ServerUnavailable as exc:
            logger.warning("Cannot claim runs: %s; trying again in 2 s.", exc)
            self._stop.wait(2.0)
            return
        for run_id in answer["cancelling"]:
            self._cancel(run_id.replace("-", ""))
        for claimed in answer["flow_runs"]:
            self._start(claimed)

    def _start(self, claimed: dict[str, Any]) -> None:
        run = claimed["flow_run"]
        run_id = run["id"].replace("-", "")
        self._names[run_id] = run["name"]
        self._tokens[run_id] = claimed["claim_token"]
        configuration = dict(claimed.get("job_configuration") or {})
        if not configuration.get("working_dir") and claimed.get("path"):
            configuration["working_dir"] = claimed["path"]
        env = {
            **self.env,
            "HEADWATER_FLOW_RUN_ID": run_id,
            "HEADWATER_CLAIM_TOKEN": claimed["claim_token"],
            "HEADWATER_ENTRYPOINT": claimed.get("entrypoint") or "",
            "HEADWATER_ENTRYPOINT_DIR": claimed.get("path") or "",
            "HEADWATER_WORKER_PID": str(os.getpid()),
            "HEADWATER_DEPLOYMENT": json.dumps(
                {
                    "id": claimed["deployment_id"],
                    "name": claimed["deployment_name"],
                    "version": claimed.get("deployment_version"),
                    "flow_name": run["flow_name"],
                    "parameters": run["parameters"],
                }
            ),
        }
        try:
            handle = self.infrastructure.start(run_id, configuration, env)
        except Exception as exc:  # a bad working_dir or command fails the run, not the worker
            logger.error("Cannot start flow run %s: %s", self._label(run_id), exc)
            self._report_failed_start(run_id, exc)
            return
        with self._lock:
            self._running[run_id] = handle
        logger.info("Started flow run %s (%s).", self._label(run_id), handle.identifier)

    def _report_failed_start(self, run_id: str, exc: Exception) -> None:
        from headwater.core.ids import uuid7_hex

        with contextlib.suppress(HeadwaterError):
            self.client.request(
                "POST",
                f"/flow_runs/{run_id}/set_state",
                json={
                    "type": "FAILED",
                    "id": uuid7_hex(),
                    "message": f"The worker could not start the run's process: "
                    f"{type(exc).__name__}: {exc}",
                },
            )

    def _cancel(self, run_id: str) -> None:
        with self._lock:
            handle = self._running.get(run_id)
            if run_id in self._cancelling:
                return
            self._cancelling.add(run_id)
        if handle is None:
            self._report_exit(run_id, None)
            return
        logger.info("Cancelling flow run %s: stopping its process.", self._label(run_id))
        self._spawn(lambda: self.infrastructure.kill(handle, self.cancel_grace), "cancel")

    # -- background --------------------------------------------------------------------

    def _heartbeat(self) -> None:
        body = {"name": self.name, "heartbeat_interval": self.heartbeat_interval}
        path = (
            f"/work_pools/{quote(self.work_pool, safe='')}/workers/heartbeat"
            if self.work_pool is not None
            else "/workers/heartbeat"
        )
        answer = self.client.request("POST", path, json=body)
        self.worker_id = str(answer["id"])

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                self._heartbeat()
            except HeadwaterError as exc:
                logger.warning("Heartbeat failed: %s", exc)

    def _reap_loop(self) -> None:
        while not self._stop.wait(REAP_INTERVAL):
            self._reap()

    def _reap(self) -> None:
        with self._lock:
            finished = [(i, h, h.poll()) for i, h in self._running.items()]
        for run_id, _handle, code in finished:
            if code is None:
                continue
            with self._lock:
                self._running.pop(run_id, None)
                self._cancelling.discard(run_id)
            logger.info("Flow run %s: process exited with code %s.", self._label(run_id), code)
            self._report_exit(run_id, code)

    def _report_exit(self, run_id: str, code: int | None) -> None:
        for attempt in range(5):
            try:
                self.client.request(
                    "POST",
                    f"/flow_runs/{run_id}/exited",
                    # A report of an older claim is ignored: the run may be someone else's now.
                    json={"exit_code": code, "claim_token": self._tokens.get(run_id)},
                )
                break
            except ServerUnavailable as exc:
                logger.warning("Cannot report the end of flow run %s: %s", run_id, exc)
                time.sleep(min(2.0**attempt, 10.0))
            except HeadwaterError as exc:
                logger.warning("Cannot report the end of flow run %s: %s", run_id, exc)
                break
        self._names.pop(run_id, None)
        self._tokens.pop(run_id, None)

    def _label(self, run_id: str) -> str:
        name = self._names.get(run_id)
        return f"{name!r} ({run_id})" if name else run_id
