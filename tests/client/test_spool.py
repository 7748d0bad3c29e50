"""While the server is unreachable, records are spooled durably and delivered exactly once later."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.client.conftest import (
    PROLOGUE,
    make_batch,
    run_script,
    script_env,
    spool_of,
    wait_until,
)
from tests.client.fake_server import FakeServer, free_port

from headwater import flow, task
from headwater.client import HttpBackend, RecordsNotDelivered, check_delivered, flush_spool
from headwater.client._encoding import batch_payload, dumps
from headwater.client._spool import Spool
from headwater.engine.recorder import close_recorder, get_recorder
from headwater.runtime import flow_run
from headwater.settings import Settings

FIFTY_TASKS = """
from headwater import flow, task

@task
def step(i):
    return i

@flow(flow_run_name=NAME)
def pipeline():
    for i in range(50):
        step(i)
    return "returned"

print(pipeline())
"""


def test_server_down_for_a_whole_run_spools_loudly_and_a_later_process_delivers(
    tmp_path: Path, home: Path
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    spool = spool_of(home, api_url)

    offline = run_script(FIFTY_TASKS.replace("NAME", "'offline'"), home, api_url)

    assert offline.returncode == 1, offline.stderr
    assert "RecordsNotDelivered" in offline.stderr
    loud = [line for line in offline.stderr.splitlines() if "| ERROR" in line]
    assert len(loud) == 1, offline.stderr
    (message,) = loud
    assert "'offline'" in message
    assert f"server at {api_url} was unreachable" in message
    assert f"spooled at {spool}" in message
    assert "next Headwater process that reaches the server" in message
    assert "headwater spool flush" in message
    assert list(spool.glob("*.json"))

    with FakeServer(tmp_path / "server.db", port=port) as server:
        online = run_script(FIFTY_TASKS.replace("NAME", "'online'"), home, api_url)
        assert online.returncode == 0, online.stderr
        assert "ERROR" not in online.stderr

    assert not list(spool.glob("*.json"))
    assert server.count("flow_run", "state_type = 'COMPLETED'") == 2
    assert server.count("task_run", "state_type = 'COMPLETED'") == 100
    assert server.count("state") == 2 * 3 * 51
    # Exactly once: no state was even sent twice.
    assert set(server.state_ids.values()) == {1}


def test_records_spooled_before_a_kill_9_are_delivered_later(tmp_path: Path, home: Path) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    code = PROLOGUE + textwrap.dedent(
        """
        import time
        from headwater import flow, task
        from headwater.engine.recorder import get_recorder

        @task
        def step(i):
            return i

        @flow(flow_run_name="doomed")
        def doomed():
            for i in range(100):
                step(i)
            get_recorder().commit().result()
            print("SPOOLED", flush=True)
            time.sleep(600)

        doomed()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env=script_env(home, api_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "SPOOLED"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert list(spool_of(home, api_url).glob("*.json"))

    with FakeServer(tmp_path / "server.db", port=port) as server:
        result = flush_spool(Settings(home=home, api_url=api_url), timeout=20)

    assert result.remaining == 0 and result.delivered >= 1
    assert server.count("flow_run", "name = 'doomed' AND state_type = 'RUNNING'") == 1
    assert server.count("task_run", "state_type = 'COMPLETED'") == 100
    assert server.count("state") == 2 + 3 * 100


def test_concurrent_processes_deliver_one_spool_exactly_once(tmp_path: Path, home: Path) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    spool = Spool(spool_of(home, api_url))
    for _ in range(40):
        spool.add(dumps(batch_payload(make_batch(5))))
    flusher = PROLOGUE + textwrap.dedent(
        """
        import headwater.client._http
        from headwater.client import flush_spool
        from headwater.settings import get_settings

        headwater.client._http.MAX_ROWS_PER_REQUEST = 50  # two files per request
        result = flush_spool(get_settings(), timeout=60)
        print(result.delivered, result.remaining)
        """
    )
    with FakeServer(tmp_path / "server.db", port=port) as server:
        server.delay = 0.03
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", flusher],
                env=script_env(home, api_url),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    delivered = [int(out.split()[0]) for out, _err in outputs]
    assert sum(delivered) == 40
    assert [out.split()[1] for out, _err in outputs] == ["0", "0", "0"]
    assert not spool.pending()
    assert server.count("flow_run") == 40
    assert server.count("task_run") == 200
    assert server.count("state") == 40 * (1 + 15)
    assert len(server.state_ids) == 40 * 16
    assert set(server.state_ids.values()) == {1}, "a spooled state was sent twice"
    assert all(r.rows <= 50 for r in server.requests)


def test_a_server_killed_mid_run_and_restarted_loses_nothing(remote: FakeServer) -> None:
    server = remote
    restarted: list[FakeServer] = []

    @task
    def step(i: int) -> int:
        return i

    @flow
    def pipeline() -> int:
        for i in range(100):
            step(i)
        get_recorder().commit().result()
        server.stop()
        for i in range(100, 200):
            step(i)
        get_recorder().commit().result()  # spooled after the retry budget
        assert Spool(spool_of(Path(os.environ["HEADWATER_HOME"]), server.api_url)).pending()
        again = FakeServer(server.store, port=server.port)
        again.start()
        restarted.append(again)
        for i in range(200, 300):
            step(i)
        return 300

    try:
        assert pipeline() == 300
        close_recorder()
    finally:
        for again in restarted:
            again.stop()
    assert server.count("flow_run", "state_type = 'COMPLETED'") == 1
    assert server.count("task_run", "state_type = 'COMPLETED'") == 300
    assert server.count("state") == 3 * 301


def test_check_delivered_raises_for_a_final_state_left_in_the_spool(
    unreachable: str, home: Path
) -> None:
    run_ids: list[str] = []

    @flow(flow_run_name="stranded")
    def stranded() -> None:
        run_ids.append(flow_run.id)

    started = time.monotonic()
    with contextlib.suppress(RecordsNotDelivered):
        stranded()
    # Bounded: the retry budget at the start, and again for the final state.
    assert time.monotonic() - started < 10
    backend = get_recorder()._writer  # see the report: a public `Recorder.backend`
    with pytest.raises(RecordsNotDelivered) as caught:
        check_delivered(backend, run_ids[0])
    error = caught.value
    assert error.flow_run_name == "stranded"
    assert error.spool_directory == spool_of(home, unreachable)
    assert str(error.spool_directory) in str(error)
    check_delivered(backend, "0" * 32)  # a run it knows nothing about


def test_check_delivered_is_quiet_once_the_spool_went_through(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.setenv("HEADWATER_API_URL", api_url)
    monkeypatch.setattr("headwater.client._http.RETRY_SECONDS", 0.3)
    close_recorder()
    from headwater.settings import reset_settings

    reset_settings()
    run_ids: list[str] = []

    @flow
    def later() -> None:
        run_ids.append(flow_run.id)

    try:
        with contextlib.suppress(RecordsNotDelivered):
            later()
        backend = get_recorder()._writer
        with pytest.raises(RecordsNotDelivered):
            check_delivered(backend, run_ids[0])
        with FakeServer(tmp_path / "server.db", port=port) as server:
            wait_until(lambda: server.count("flow_run", "state_type = 'COMPLETED'") == 1)
            wait_until(lambda: not list(spool_of(home, api_url).glob("*.json")))
            check_delivered(backend, run_ids[0])
    finally:
        close_recorder()
        reset_settings()


def test_a_root_flow_call_raises_when_its_final_state_is_only_spooled(
    unreachable: str, home: Path
) -> None:
    @flow(flow_run_name="stranded")
    def stranded() -> int:
        return 1

    with pytest.raises(RecordsNotDelivered, match="spooled at") as caught:
        stranded()
    assert caught.value.spool_directory == spool_of(home, unreachable)


def test_a_forked_child_does_not_keep_the_spool_locked(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    with spool.delivery_lock() as locked:
        assert locked
        child = os.fork()
        if child == 0:  # a long-lived child, like a process-pool worker
            time.sleep(30)
            os._exit(0)
    try:

        def lockable() -> bool:
            with Spool(tmp_path / "spool").delivery_lock() as locked_again:
                return locked_again

        # The child drops its copy of the lock as soon as it runs.
        wait_until(lockable, timeout=5, message="the spool lock to be free")
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_write_raises_when_it_can_neither_deliver_nor_spool(tmp_path: Path) -> None:
    # The recorder then keeps the batch queued and retries it (see engine/recorder.py).
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    api_url = f"http://127.0.0.1:{free_port()}/api"
    backend = HttpBackend(api_url, spool_directory=blocked / "spool", retry_seconds=0.1)
    try:
        with pytest.raises(OSError):
            backend.write(make_batch(1))
    finally:
        backend.close()
