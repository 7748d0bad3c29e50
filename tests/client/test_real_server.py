"""The SDK against a real `headwater server start` process, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from tests.client.conftest import PROLOGUE, backend_for, make_batch, script_env, spool_of
from tests.client.fake_server import free_port

from headwater.core.states import StateType


@contextlib.contextmanager
def real_server(
    home: Path, database_url: str, port: int, **env: str
) -> Iterator[subprocess.Popen[str]]:
    """`headwater server start --port <port>` until the block ends (or the test kills it)."""
    home.mkdir(parents=True, exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    environment.update(HEADWATER_HOME=str(home), HEADWATER_DATABASE_URL=database_url, **env)
    log = home / f"server-{port}-{time.monotonic_ns()}.log"
    command = str(Path(sys.executable).with_name("headwater"))
    with log.open("w") as out:
        process = subprocess.Popen(
            [command, "server", "start", "--port", str(port), "--no-services"],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).is_success:
                    break
            assert time.monotonic() < deadline, f"server did not start: {log.read_text()}"
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _get(port: int, path: str, **params: str) -> dict[str, object]:
    response = httpx.get(f"http://127.0.0.1:{port}/api{path}", params=params, timeout=30)
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


def test_a_flow_run_reports_everything_to_a_real_server(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    code = PROLOGUE + textwrap.dedent(
        """
        from headwater import flow, task, get_run_logger

        @task
        def step(i):
            return i

        @flow(flow_run_name="served")
        def served(n: int):
            for i in range(n):
                step(i)
            get_run_logger().info("all done")

        served(2000)
        """
    )
    with real_server(tmp_path / "server", database_url, port):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=script_env(tmp_path / "client", api_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "WARNING" not in result.stderr and "ERROR" not in result.stderr
        assert _get(port, "/flow_runs/counts") == {"counts": {"COMPLETED": 1}, "total": 1}
        (run,) = _get(port, "/flow_runs")["items"]  # type: ignore[misc]
        tasks = _get(port, "/task_runs", flow_run_id=run["id"], limit="1")
        assert tasks["total"] == 2000
        logs = _get(port, "/logs", flow_run_id=run["id"], limit="200")
        assert "all done" in [line["message"] for line in logs["items"]]  # type: ignore[attr-defined]
    assert not list(spool_of(tmp_path / "client", api_url).glob("*.json"))


def test_killing_the_server_mid_run_and_restarting_it_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    killed, restarted = tmp_path / "killed", tmp_path / "restarted"
    code = PROLOGUE + textwrap.dedent(
        f"""
        import os, time
        from headwater import flow, task
        from headwater.engine.recorder import get_recorder

        def wait_for(path):
            while not os.path.exists(path):
                time.sleep(0.01)

        @task
        def step(i):
            return i

        @flow(flow_run_name="survivor")
        def survivor():
            for i in range(100):
                step(i)
            get_recorder().commit().result()
            print("delivered", flush=True)
            wait_for({str(killed)!r})
            for i in range(100, 200):
                step(i)
            get_recorder().commit().result()  # the server is down: spooled
            print("spooled", flush=True)
            wait_for({str(restarted)!r})
            for i in range(200, 300):
                step(i)

        survivor()
        """
    )
    server_home = tmp_path / "server"
    client = None
    try:
        with real_server(server_home, database_url, port) as first:
            client = subprocess.Popen(
                [sys.executable, "-c", code],
                env=script_env(tmp_path / "client", api_url),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert client.stdout is not None
            assert client.stdout.readline().strip() == "delivered"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        killed.touch()
        assert client.stdout.readline().strip() == "spooled"
        assert list(spool_of(tmp_path / "client", api_url).glob("*.json"))
        with real_server(server_home, database_url, port):
            restarted.touch()
            _out, err = client.communicate(timeout=120)
            assert client.returncode == 0, err
            assert "ERROR" not in err
            assert _get(port, "/flow_runs/counts") == {"counts": {"COMPLETED": 1}, "total": 1}
            assert _get(port, "/task_runs", state_type="COMPLETED", limit="1")["total"] == 300
    finally:
        if client is not None and client.poll() is None:
            client.kill()
    assert not list(spool_of(tmp_path / "client", api_url).glob("*.json"))


def test_api_key_gzip_and_a_rejected_batch_with_a_real_server(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "client"
    with real_server(tmp_path / "server", database_url, port, HEADWATER_API_KEY="k3y"):
        keyed = backend_for(api_url, home, api_key="k3y", compress_min_bytes=1024)
        wrong = backend_for(api_url, home / "wrong", api_key="nope", retry_seconds=0.2)
        try:
            keyed.write(make_batch(300, final=StateType.COMPLETED))  # gzipped
            bad = make_batch(1)
            ((task_id, row),) = bad.task_runs.items()
            bad.task_runs[task_id] = (*row[:5], "NOT-A-STATE", *row[6:])
            keyed.write(bad)
            wrong.write(make_batch(2))
        finally:
            keyed.close()
            wrong.close()
        headers = {"Authorization": "Bearer k3y"}
        counts = httpx.get(f"{api_url}/task_runs", params={"limit": 1}, headers=headers).json()
        assert counts["total"] == 300
    assert not keyed.spool.pending()
    (rejected,) = keyed.spool.rejected_directory.glob("*.json")
    assert "NOT-A-STATE" in rejected.read_text()
    assert "HTTP 422" in rejected.with_suffix(".error.txt").read_text()
    # A wrong key is not the batch's fault: it waits in the spool, not in rejected/.
    assert len(wrong.spool.pending()) == 1
    assert not wrong.spool.rejected_directory.exists()
