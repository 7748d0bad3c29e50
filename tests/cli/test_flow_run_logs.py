"""`headwater flow-run logs`: lines in order, level filter, and --follow until the run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from headwater.cli.output import local_time

from .helpers import BASE, HEADWATER, StoreBuilder, assert_one_line_error, invoke


def test_logs_in_time_order_with_task_run_names(store: StoreBuilder) -> None:
    run = store.flow_run(name="crimson-fox")
    extract = store.task_run(run.id, "extract-0")
    store.log(run.id, "Finished in state Completed()", at=BASE + 3)
    store.log(run.id, "Beginning flow run 'crimson-fox'", at=BASE + 1)
    store.log(run.id, "read 120 rows [from s3]", at=BASE + 2, task_run=extract)

    result = invoke("flow-run", "logs", str(run.id)[:18])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{local_time(BASE + 1, millis=True)} | INFO     | flow - Beginning flow run 'crimson-fox'",
        f"{local_time(BASE + 2, millis=True)} | INFO     | extract-0 - read 120 rows [from s3]",
        f"{local_time(BASE + 3, millis=True)} | INFO     | flow - Finished in state Completed()",
    ]


def test_level_filter(store: StoreBuilder) -> None:
    run = store.flow_run()
    store.log(run.id, "chatty", at=BASE + 1, level=10)
    store.log(run.id, "careful", at=BASE + 2, level=30)
    store.log(run.id, "broken", at=BASE + 3, level=40)

    warning = invoke("flow-run", "logs", str(run.id), "--level", "warning")
    numeric = invoke("flow-run", "logs", str(run.id), "-l", "40")

    assert [line.split(" - ")[-1] for line in warning.stdout.splitlines()] == [
        "careful",
        "broken",
    ]
    assert "WARNING" in warning.stdout and "ERROR" in warning.stdout
    assert [line.split(" - ")[-1] for line in numeric.stdout.splitlines()] == ["broken"]


def test_unknown_level_is_one_line(store: StoreBuilder) -> None:
    run = store.flow_run()

    result = invoke("flow-run", "logs", str(run.id), "--level", "LOUD")

    assert_one_line_error(result, "Unknown log level 'LOUD'", "WARNING")


def test_run_without_logs_says_so_on_stderr(store: StoreBuilder) -> None:
    run = store.flow_run()

    result = invoke("flow-run", "logs", str(run.id))

    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"No logs for flow run {run.id}." in result.stderr


def test_follow_prints_new_lines_and_exits_when_the_run_finishes(store: StoreBuilder) -> None:
    run = store.flow_run(
        name="live", state="RUNNING", start=time.time(), process=f"other-host:{os.getpid()}:1"
    )
    store.log(run.id, "step 1", at=time.time())
    writer = StoreBuilder(store.url)  # the "engine": its own connection, another thread

    def engine() -> None:
        time.sleep(0.8)
        writer.log(run.id, "step 2", at=time.time())
        time.sleep(0.8)
        writer.log(run.id, "step 3", at=time.time())
        writer.finish(run, "COMPLETED")
        writer.log(run.id, "Finished in state Completed()", at=time.time())

    thread = threading.Thread(target=engine)
    started = time.monotonic()
    thread.start()
    try:
        result = invoke("flow-run", "logs", str(run.id), "--follow")
    finally:
        thread.join()
        writer.close()
    elapsed = time.monotonic() - started

    assert result.exit_code == 0, result.output
    messages = [line.split(" - ", 1)[1] for line in result.stdout.splitlines()]
    assert messages == ["step 1", "step 2", "step 3", "Finished in state Completed()"]
    assert 1.6 <= elapsed < 10


def test_follow_of_a_finished_run_returns_at_once(store: StoreBuilder) -> None:
    run = store.flow_run(start=BASE)
    store.log(run.id, "done long ago", at=BASE + 1)

    started = time.monotonic()
    result = invoke("flow-run", "logs", str(run.id), "--follow")

    assert result.exit_code == 0
    assert "done long ago" in result.stdout
    assert time.monotonic() - started < 5


def test_follow_in_a_real_process(sqlite_store: StoreBuilder) -> None:
    run = sqlite_store.flow_run(name="live", state="RUNNING", start=time.time())
    sqlite_store.log(run.id, "first", at=time.time())
    follower = subprocess.Popen(
        [str(HEADWATER), "flow-run", "logs", str(run.id)[:18], "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        sqlite_store.log(run.id, "second", at=time.time())
        sqlite_store.finish(run, "FAILED")
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        follower.kill()

    assert follower.returncode == 0, stderr
    assert [line.split(" - ", 1)[1] for line in stdout.splitlines()] == ["first", "second"]


def test_ctrl_c_stops_following_cleanly(sqlite_store: StoreBuilder) -> None:
    run = sqlite_store.flow_run(name="endless", state="RUNNING", start=time.time())
    sqlite_store.log(run.id, "still going", at=time.time())
    follower = subprocess.Popen(
        [str(HEADWATER), "flow-run", "logs", str(run.id), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        assert follower.stdout is not None
        first = follower.stdout.readline()  # following has begun
        assert "still going" in first
        while time.monotonic() < deadline and follower.poll() is None:
            follower.send_signal(signal.SIGINT)
            try:
                follower.wait(timeout=2)
            except subprocess.TimeoutExpired:
                continue
        stderr = follower.stderr.read() if follower.stderr else ""
    finally:
        follower.kill()

    assert follower.returncode == 0, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
