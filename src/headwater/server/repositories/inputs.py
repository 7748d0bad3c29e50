"""Flow run inputs, and pausing and resuming flow runs (human-in-the-loop).

A pause is an input row of its run (`paused-<key>-schema`, see `schemas.inputs`):
the schema of the input it waits for, its deadline, whether it suspended the run.
Its existence is what makes a pause key "fired": a run that runs its flow again
after a suspension finds its earlier pauses there and goes on with their input.

The orchestration rules of pausing:

- only a Running run pauses; a run not of a deployment cannot suspend;
- only a Paused (or Suspended) run is resumed, and not after its deadline;
- the input must be valid against the pause's schema (422 naming the field);
- a Paused run goes back to Running in the same attempt (`run_count` unchanged:
  its process is still executing it); a Suspended run is scheduled again on its
  deployment (Scheduled "Resuming", due now) and a worker starts it anew.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from headwater.core.ids import uuid7_hex
from headwater.core.rules import RunPosition
from headwater.core.states import TERMINAL_TYPES, StateType
from headwater.exceptions import Conflict, InvalidRunInput, ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.inputs import (
    PAUSE_PREFIX,
    FlowRunInputResponse,
    PauseInfo,
    PauseRequest,
    PauseResponse,
    ResumeResponse,
    pause_record_key,
    pause_response_key,
)
from headwater.server.repositories import flow_runs
from headwater.server.services import Outcome

if TYPE_CHECKING:
    from headwater.server.database import Database
from headwater.store.tables import flow_run, flow_run_input

_RECORD_SUFFIX = "-schema"


def _response(row: sa.RowMapping) -> FlowRunInputResponse:
    return FlowRunInputResponse(
        id=row["id"],
        flow_run_id=row["flow_run_id"],
        key=row["key"],
        value=row["value"],
        sender=row["sender"],
        created=utc(row["created"]),
    )


def _find(conn: sa.Connection, flow_run_id: uuid.UUID, key: str) -> sa.RowMapping | None:
    query = sa.select(flow_run_input).where(
        flow_run_input.c.flow_run_id == flow_run_id, flow_run_input.c.key == key
    )
    return conn.execute(query).mappings().first()


def _insert(
    conn: sa.Connection, flow_run_id: uuid.UUID, key: str, value: Any, sender: str | None
) -> sa.RowMapping:
    conn.execute(
        sa.insert(flow_run_input).values(
            id=uuid.UUID(uuid7_hex()),
            flow_run_id=flow_run_id,
            key=key,
            value=value,
            sender=sender,
            created=time.time(),
        )
    )
    row = _find(conn, flow_run_id, key)
    assert row is not None
    return row


def require_run(conn: sa.Connection, flow_run_id: uuid.UUID) -> None:
    if not flow_runs.exists(conn, flow_run_id=flow_run_id):
        raise ObjectNotFound(f"No flow run found with id {str(flow_run_id)!r}.")


# -- inputs (send_input / receive_input) ------------------------------------------------


def create(
    conn: sa.Connection, *, flow_run_id: uuid.UUID, key: str, value: Any, sender: str | None
) -> FlowRunInputResponse:
    """Store `value` for the run under `key`.

    Raises:
        ObjectNotFound: no such run. Conflict: the run has an input with this key.
        InvalidRunInput: the key is reserved for pauses.
    """
    if key.startswith(PAUSE_PREFIX):
        raise InvalidRunInput(
            f"Input key {key!r} starts with {PAUSE_PREFIX!r}, which is reserved for "
            "pause_flow_run; choose another key."
        )
    require_run(conn, flow_run_id)
    if _find(conn, flow_run_id, key) is not None:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} already has an input with key {key!r}; keys are "
            "unique per run (send_input adds a random suffix to its key prefix)."
        )
    return _response(_insert(conn, flow_run_id, key, value, sender))


def read(conn: sa.Connection, *, flow_run_id: uuid.UUID, key: str) -> FlowRunInputResponse:
    row = _find(conn, flow_run_id, key)
    if row is None:
        require_run(conn, flow_run_id)
        raise ObjectNotFound(f"Flow run {str(flow_run_id)!r} has no input with key {key!r}.")
    return _response(row)


def delete(conn: sa.Connection, *, flow_run_id: uuid.UUID, key: str) -> None:
    read(conn, flow_run_id=flow_run_id, key=key)  # 404s
    conn.execute(
        sa.delete(flow_run_input).where(
            flow_run_input.c.flow_run_id == flow_run_id, flow_run_input.c.key == key
        )
    )


def find(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID,
    prefix: str | None,
    exclude_keys: list[str],
    limit: int,
) -> list[FlowRunInputResponse]:
    """The run's inputs whose key starts with `prefix`, oldest first, without `exclude_keys`
    (and without pause bookkeeping unless `prefix` asks for it)."""
    query = sa.select(flow_run_input).where(flow_run_input.c.flow_run_id == flow_run_id)
    if prefix:
        query = query.where(flow_run_input.c.key.startswith(prefix, autoescape=True))
    else:
        query = query.where(~flow_run_input.c.key.startswith(PAUSE_PREFIX, autoescape=True))
    if exclude_keys:
        query = query.where(flow_run_input.c.key.not_in(exclude_keys))
    query = query.order_by(flow_run_input.c.created, flow_run_input.c.id).limit(limit)
    return [_response(row) for row in conn.execute(query).mappings()]


# -- pausing and resuming ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Pause:
    key: str
    record: dict[str, Any]
    response: sa.RowMapping | None


def _latest_pause(conn: sa.Connection, flow_run_id: uuid.UUID) -> _Pause | None:
    query = (
        sa.select(flow_run_input.c.key, flow_run_input.c.value)
        .where(
            flow_run_input.c.flow_run_id == flow_run_id,
            flow_run_input.c.key.startswith(PAUSE_PREFIX, autoescape=True),
            flow_run_input.c.key.endswith(_RECORD_SUFFIX, autoescape=True),
        )
        .order_by(flow_run_input.c.created.desc(), flow_run_input.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    key = row.key[len(PAUSE_PREFIX) : -len(_RECORD_SUFFIX)]
    record = row.value if isinstance(row.value, dict) else {}
    return _Pause(key, record, _find(conn, flow_run_id, pause_response_key(key)))


def _deployment_row(conn: sa.Connection, flow_run_id: uuid.UUID) -> sa.RowMapping:
    query = sa.select(
        flow_run.c.flow_id,
        flow_run.c.deployment_id,
        flow_run.c.work_pool_id,
        flow_run.c.work_queue_id,
    ).where(flow_run.c.id == flow_run_id)
    return conn.execute(query).mappings().one()


def _check_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRunInput(
            f"input_schema is not a valid JSON schema: {exc.message}; derive it from a "
            "RunInput model (Model.model_json_schema())."
        ) from None


def check_input(schema: dict[str, Any], value: dict[str, Any]) -> None:
    """Raise `InvalidRunInput` naming each field of `value` that does not match `schema`."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = []
    for error in sorted(validator.iter_errors(value), key=str):
        where = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "required":
            problems.append(f"{error.message} (give it with --input KEY=VALUE)")
        elif error.validator == "additionalProperties":
            known = ", ".join(sorted((schema.get("properties") or {}).keys())) or "none"
            problems.append(f"{error.message} (fields: {known})")
        elif where:
            problems.append(f"field {where!r}: {error.message}")
        else:
            problems.append(error.message)
    if problems:
        raise InvalidRunInput("Invalid run input: " + "; ".join(problems[:10]) + ".")


def pause(conn: sa.Connection, *, flow_run_id: uuid.UUID, body: PauseRequest) -> PauseResponse:
    """Pause (or suspend) a Running run, unless this pause key fired before.

    Raises:
        ObjectNotFound: no such run. Conflict: the run is not Running, or cannot suspend.
        InvalidRunInput: `input_schema` is not a JSON schema.
    """
    current = flow_runs.current_state(conn, flow_run_id=flow_run_id)
    record_key = pause_record_key(body.key)
    if _find(conn, flow_run_id, record_key) is not None:
        response = _find(conn, flow_run_id, pause_response_key(body.key))
        run = flow_runs.read(conn, flow_run_id=flow_run_id)
        return PauseResponse(
            paused=False,
            state_type=run.state_type,
            state_name=run.state_name,
            state_timestamp=run.state_timestamp,
            has_input=response is not None,
            run_input=None if response is None else response["value"],
        )
    if current.state_type is not StateType.RUNNING:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is {current.state_type.value}, not RUNNING: only a "
            "running flow run can pause."
        )
    if body.suspend and _deployment_row(conn, flow_run_id)["deployment_id"] is None:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is not a run of a deployment, so it cannot be "
            "suspended (nothing could start it again); use pause_flow_run() instead."
        )
    if body.input_schema is not None:
        _check_schema(body.input_schema)
    now = time.time()
    deadline = None if body.timeout_seconds is None else now + body.timeout_seconds
    record = {
        "schema": body.input_schema,
        "description": body.description,
        "suspended": body.suspend,
        "timeout_seconds": body.timeout_seconds,
        "deadline": deadline,
    }
    _insert(conn, flow_run_id, record_key, record, None)
    name = "Suspended" if body.suspend else "Paused"
    waits = "for input" if body.input_schema is not None else "to be resumed"
    until = "" if deadline is None else f" until {utc(deadline):%Y-%m-%d %H:%M:%S} UTC"
    message = (
        f"{name}: waiting {waits}{until}; resume it with `headwater flow-run resume {flow_run_id}`."
    )
    timestamp = max(now, current.state_timestamp)
    if not flow_runs.change_state(
        conn,
        flow_run_id=flow_run_id,
        current=current,
        state_id=uuid.UUID(uuid7_hex()),
        state_type=StateType.PAUSED,
        name=name,
        message=message,
        timestamp=timestamp,
    ):
        raise Conflict("The run's state changed meanwhile; read it again and retry.")
    return PauseResponse(
        paused=True,
        state_type=StateType.PAUSED,
        state_name=name,
        state_timestamp=utc(timestamp),
        has_input=False,
    )


def pause_info(conn: sa.Connection, *, flow_run_id: uuid.UUID) -> PauseInfo:
    """The run's state and its latest pause (all None/False if it never paused)."""
    run = flow_runs.read(conn, flow_run_id=flow_run_id)
    latest = _latest_pause(conn, flow_run_id)
    record = latest.record if latest else {}
    deadline = record.get("deadline")
    response = latest.response if latest else None
    return PauseInfo(
        flow_run_id=flow_run_id,
        state_type=run.state_type,
        state_name=run.state_name,
        state_timestamp=run.state_timestamp,
        key=latest.key if latest else None,
        input_schema=record.get("schema"),
        description=record.get("description"),
        suspended=bool(record.get("suspended")),
        timeout_seconds=record.get("timeout_seconds"),
        deadline=utc(float(deadline)) if isinstance(deadline, int | float) else None,
        has_input=response is not None,
        run_input=None if response is None else response["value"],
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Resumed:
    response: ResumeResponse
    #: set when the pause had expired: the run is Failed now, the route answers 409
    refusal: str | None = None


def resume(
    conn: sa.Connection, *, flow_run_id: uuid.UUID, run_input: dict[str, Any] | None
) -> Resumed:
    """Resume a Paused or Suspended run with `run_input`.

    Raises:
        ObjectNotFound: no such run. Conflict: the run is not paused.
        InvalidRunInput: the input is missing or does not match the pause's schema.
    """
    current = flow_runs.current_state(conn, flow_run_id=flow_run_id)
    if current.state_type is not StateType.PAUSED:
        final = " (a final state)" if current.state_type in TERMINAL_TYPES else ""
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is {current.state_type.value}{final}, not PAUSED: "
            "only a paused or suspended flow run can be resumed."
        )
    latest = _latest_pause(conn, flow_run_id)
    record = latest.record if latest else {}
    now = time.time()
    deadline = record.get("deadline")
    if isinstance(deadline, int | float) and now > deadline:
        message = (
            f"The flow run was paused and not resumed within its timeout of "
            f"{record.get('timeout_seconds'):g} second(s)."
        )
        _move(conn, flow_run_id, current, StateType.FAILED, "Failed", message, now)
        return Resumed(
            _answer(conn, flow_run_id), refusal=f"Cannot resume: {message} It is now Failed."
        )
    schema = record.get("schema")
    if schema is not None:
        if run_input is None:
            fields = ", ".join(sorted((schema.get("properties") or {}).keys())) or "none"
            raise InvalidRunInput(
                f"Flow run {str(flow_run_id)!r} waits for input (fields: {fields}): give "
                "run_input (CLI: --input KEY=VALUE or --input-json JSON)."
            )
        check_input(schema, run_input)
    elif run_input is not None:
        raise InvalidRunInput(
            f"Flow run {str(flow_run_id)!r} does not wait for input: resume it without run_input."
        )
    if latest is not None and run_input is not None:
        conn.execute(
            sa.delete(flow_run_input).where(
                flow_run_input.c.flow_run_id == flow_run_id,
                flow_run_input.c.key == pause_response_key(latest.key),
            )
        )
        _insert(conn, flow_run_id, pause_response_key(latest.key), run_input, None)
    run = flow_runs.read(conn, flow_run_id=flow_run_id)
    if run.state_name == "Suspended":
        _move(conn, flow_run_id, current, StateType.SCHEDULED, "Resuming", "Resumed.", now)
        from headwater.server.repositories.claims import requeue

        requeue(conn, flow_run_id, _deployment_row(conn, flow_run_id), now)
    else:
        _move(conn, flow_run_id, current, StateType.RUNNING, "Running", "Resumed.", now)
    return Resumed(_answer(conn, flow_run_id))


def _answer(conn: sa.Connection, flow_run_id: uuid.UUID) -> ResumeResponse:
    run = flow_runs.read(conn, flow_run_id=flow_run_id)
    return ResumeResponse(
        flow_run_id=flow_run_id,
        state_type=run.state_type,
        state_name=run.state_name,
        state_message=run.state_message,
    )


def _move(
    conn: sa.Connection,
    flow_run_id: uuid.UUID,
    current: RunPosition,
    state_type: StateType,
    name: str,
    message: str,
    now: float,
) -> None:
    """Compare-and-set the run's state, keeping its `run_count`: a paused run resumes in the
    attempt it paused in (its process goes on with it), unlike `flow_runs.change_state`,
    which counts a new attempt on entering Running."""
    timestamp = max(now, current.state_timestamp)
    values: dict[str, Any] = {
        "state_type": state_type.value,
        "state_name": name,
        "state_message": message,
        "state_timestamp": timestamp,
        "updated": now,
    }
    if state_type in TERMINAL_TYPES:
        values["end_time"] = timestamp
    result = conn.execute(
        sa.update(flow_run)
        .where(
            flow_run.c.id == flow_run_id,
            flow_run.c.state_type == current.state_type.value,
            flow_run.c.state_timestamp == current.state_timestamp,
        )
        .values(values)
    )
    if result.rowcount != 1:
        raise Conflict("The run's state changed meanwhile; read it again and retry.")
    flow_runs.record_state(
        conn,
        state_id=uuid.UUID(uuid7_hex()),
        flow_run_id=flow_run_id,
        state_type=state_type,
        name=name,
        message=message,
        timestamp=timestamp,
    )


def fail_expired_pauses(db: Database, now: float) -> Outcome:
    """A services round: Paused and Suspended runs past their pause's deadline are Failed.

    A paused process fails its own run when its wait times out; this catches the runs
    nobody waits for any more: suspended ones, and those whose process died.
    """
    changed: list[uuid.UUID] = []
    with db.write() as conn:
        paused = conn.execute(
            sa.select(flow_run.c.id, flow_run.c.run_count, flow_run.c.state_timestamp).where(
                flow_run.c.state_type == StateType.PAUSED.value
            )
        ).all()
        for run_id, run_count, stamp in paused:
            latest = _latest_pause(conn, run_id)
            deadline = latest.record.get("deadline") if latest else None
            if not isinstance(deadline, int | float) or now <= deadline:
                continue
            timeout = latest.record.get("timeout_seconds") if latest else None
            message = "The flow run was paused and not resumed within its timeout" + (
                f" of {timeout:g} second(s)." if isinstance(timeout, int | float) else "."
            )
            current = RunPosition(StateType.PAUSED, run_count, stamp)
            try:
                _move(conn, run_id, current, StateType.FAILED, "Failed", message, now)
            except Conflict:
                continue  # resumed (or changed) meanwhile: that wins
            changed.append(run_id)
    return Outcome(len(changed), frozenset(i.hex for i in changed))
