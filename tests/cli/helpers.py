"""Test helpers for the CLI: a builder that fills a real store through the real
writer, and ways to run the `headwater` command in-process and as a process.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from headwater.cli.app import create_app
from headwater.core.ids import flow_id, uuid7
from headwater.core.records import Batch
from headwater.core.states import TERMINAL_TYPES, StateType
from headwater.settings import reset_settings
from headwater.store import columns
from headwater.store.writer import Writer, open_writer

HEADWATER = Path(sys.executable).with_name("headwater")

#: An hour ago: test runs happen in the recent past, so relative filters apply.
BASE = time.time() - 3600


def _hex(value: uuid.UUID | str) -> str:
    """An id in the recorder's row format: 32 hex digits (see core/records.py)."""
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(value).hex


def _optional_hex(value: uuid.UUID | None) -> str | None:
    return None if value is None else _hex(value)


@dataclasses.dataclass
class Run:
    """What the builder wrote for one run, so later writes can update it."""

    row: dict[str, Any]

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(hex=self.row["id"])


class StoreBuilder:
    """Writes realistic flow runs, task runs, states and logs through the real writer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.writer: Writer = open_writer(url)
        self._names = itertools.count()

    def close(self) -> None:
        self.writer.close()

    def flow_run(
        self,
        flow: str = "etl",
        *,
        name: str | None = None,
        state: str = "COMPLETED",
        message: str | None = None,
        start: float | None = BASE,
        duration: float | None = 2.5,
        expected_start: float | None = None,
        parameters: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        parent: uuid.UUID | None = None,
        process: str | None = None,
        run_id: uuid.UUID | None = None,
    ) -> Run:
        """A flow run with its state history Pending -> Running -> `state`."""
        state_type = StateType(state)
        end = None
        if start is not None and duration is not None and state_type in TERMINAL_TYPES:
            end = start + duration
        created = (start if start is not None else expected_start or BASE) - 0.01
        state_time = end or start or created
        row = {
            "id": _hex(run_id or uuid7()),
            "flow_id": _hex(flow_id(flow)),
            "name": name or f"run-{next(self._names)}",
            "state_type": state_type.value,
            "state_name": state_type.value.title(),
            "state_message": message,
            "state_timestamp": state_time,
            "parameters": parameters if parameters is not None else {"n": 3},
            "tags": tags or [],
            "run_count": 1 if start is not None else 0,
            "parent_flow_run_id": _optional_hex(parent),
            "root_flow_run_id": None,
            "parent_task_run_id": None,
            "deployment_id": None,
            "expected_start_time": expected_start if expected_start is not None else created,
            "start_time": start,
            "end_time": end,
            "created": created,
            "updated": state_time,
            "process": process,
        }
        history = [("PENDING", created)]
        if start is not None:
            history.append(("RUNNING", start))
        if state_type.value not in {"PENDING", "RUNNING"}:
            history.append((state_type.value, state_time))
        run_key, flow_key = str(row["id"]), str(row["flow_id"])
        batch = Batch(flows={flow_key: (flow_key, flow, created)})
        batch.flow_runs[run_key] = self._tuple(row)
        batch.states.extend(
            (
                _hex(uuid7()),
                row["id"],
                None,
                kind,
                kind.title(),
                message if kind == state else None,
                at,
            )
            for kind, at in history
        )
        self.writer.write(batch)
        return Run(row)

    def finish(self, run: Run, state: str = "COMPLETED", *, at: float | None = None) -> None:
        """Move `run` to a final state, as the engine does when the flow returns."""
        at = time.time() if at is None else at
        run.row.update(
            state_type=state,
            state_name=state.title(),
            state_timestamp=at,
            end_time=at,
            updated=at,
        )
        batch = Batch(flow_runs={run.row["id"]: self._tuple(run.row)})
        batch.states.append((_hex(uuid7()), run.row["id"], None, state, state.title(), None, at))
        self.writer.write(batch)

    def task_run(
        self,
        flow_run: uuid.UUID,
        name: str,
        *,
        state: str = "COMPLETED",
        start: float = BASE,
        duration: float = 0.5,
        run_count: int = 1,
    ) -> uuid.UUID:
        task_id = uuid7()
        end = start + duration if StateType(state) in TERMINAL_TYPES else None
        task_key, flow_run_key = _hex(task_id), _hex(flow_run)
        row: tuple[Any, ...] = (
            task_key,
            flow_run_key,
            f"tests.{name.rsplit('-', 1)[0]}-5f3a",
            str(next(self._names)),
            name,
            state,
            state.title(),
            None,
            end or start,
            [],
            run_count,
            {},
            start,
            end,
            start - 0.001,
            end or start,
        )
        batch = Batch(task_runs={task_key: row})
        for kind, at in [("RUNNING", start)] + ([(state, end)] if end is not None else []):
            batch.states.append(
                (_hex(uuid7()), flow_run_key, task_key, kind, kind.title(), None, at)
            )
        self.writer.write(batch)
        return task_id

    def log(
        self,
        flow_run: uuid.UUID,
        message: str,
        *,
        at: float,
        level: int = 20,
        task_run: uuid.UUID | None = None,
    ) -> None:
        logger = "headwater.task_runs" if task_run else "headwater.flow_runs"
        row = (_hex(uuid7()), _hex(flow_run), _optional_hex(task_run), level, logger, message, at)
        self.writer.write(Batch(logs=[row]))

    @staticmethod
    def _tuple(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in columns.FLOW_RUN)


def invoke(*args: str) -> Result:
    """Run `headwater ARGS` in-process; settings are read afresh, as in a new process."""
    reset_settings()
    return CliRunner().invoke(create_app(), list(args), prog_name="headwater")


def run_headwater(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `headwater` script in a new process."""
    return subprocess.run(
        [str(HEADWATER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        check=False,
    )


def assert_one_line_error(result: Result | subprocess.CompletedProcess[str], *parts: str) -> None:
    """The command failed with exit code 1 and one readable line on stderr."""
    stderr = result.stderr
    if isinstance(result, subprocess.CompletedProcess):
        code = result.returncode
    else:
        code = result.exit_code
    assert code == 1, (code, result.stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


#: A small ETL flow the CLI tests run in real processes (flow name: $FLOW_NAME or etl-demo).
FLOW_SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import time

    from headwater import flow, get_run_logger, task


    @task
    def extract(n: int) -> list[int]:
        get_run_logger().info("extracting %d rows", n)
        return list(range(n))


    @task
    def load(rows: list[int]) -> int:
        get_run_logger().warning("loading %d rows", len(rows))
        return len(rows)


    @flow(name=os.environ.get("FLOW_NAME", "etl-demo"))
    def etl(n: int = 3, pause: float = 0.0) -> int:
        logger = get_run_logger()
        logger.info("starting")
        rows = extract(n)
        for step in range(int(pause * 2)):
            logger.info("waiting %d", step)
            time.sleep(0.5)
        return load(rows)


    if __name__ == "__main__":
        print(etl(int(sys.argv[1]), float(sys.argv[2])), flush=True)
    """
)
