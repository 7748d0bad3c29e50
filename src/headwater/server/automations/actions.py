"""The actions of automation firings: `run_pending_actions` performs due PENDING rows of
`automation_action` and records each outcome.

The automations service writes one row per action of a firing (an outbox)
and calls `run_pending_actions` after each evaluation. For each due row, in
position order within its firing (an action waits until the one before it
finished):

1. claim: the row becomes RUNNING (attempts + 1) and that commits
   (PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, so two services
   processes never take the same row; SQLite: the single writer);
2. perform it outside any transaction (`perform.py`);
3. record: COMPLETED with a JSON `result`, or FAILED with an `error`, and
   an event `headwater.automation.action.completed` / `.failed`.

Transient failures (network errors, 5xx answers, a busy database) are tried
again, up to `MAX_ATTEMPTS` in all, after `RETRY_DELAYS`; others fail at once.

A row left RUNNING by a process that stopped (not updated for
`STALE_AFTER_SECONDS`) is taken back: actions that are safe to repeat
(run-deployment, whose idempotency key finds the run made before; pausing
and resuming; flow run state changes) become PENDING again; notifications
and webhooks become FAILED ("may not have been delivered"), since sending
them twice would be worse than not at all (at-most-once delivery).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from headwater.core.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from headwater.server.automations.failures import ActionError
from headwater.store.tables import automation_action, automation_firing

if TYPE_CHECKING:
    from headwater.server.database import Database
    from headwater.server.services import Publish
    from headwater.settings import Settings

logger = logging.getLogger(__name__)

PENDING, RUNNING, COMPLETED, FAILED = "PENDING", "RUNNING", "COMPLETED", "FAILED"
#: Attempts of an action whose failures are transient, the first included.
MAX_ATTEMPTS = 3
#: Seconds before the 2nd and the 3rd attempt.
RETRY_DELAYS = (5.0, 30.0)
#: A RUNNING row not updated for this long was left by a process that stopped. Longer than
#: any action may take (a webhook's timeout is at most 60 s, a notification's 30 s).
STALE_AFTER_SECONDS = 90.0
#: The error of a notification or webhook whose process stopped while sending it.
INTERRUPTED = "may not have been delivered: the server stopped while sending"

_CLAIMED = [
    automation_action.c.id,
    automation_action.c.firing_id,
    automation_action.c.automation_id,
    automation_action.c.position,
    automation_action.c.action,
    automation_action.c.attempts,
    automation_action.c.result,
]


def run_pending_actions(
    db: Database,
    now: float,
    *,
    publish: Publish | None = None,
    limit: int = 50,
    settings: Settings | None = None,
) -> int:
    """Perform up to `limit` due actions; how many were performed (succeeded or failed).

    Also takes back actions left RUNNING by a stopped process (see the module's
    docstring). `publish` tells this process's long-polling workers about flow
    runs the actions created or changed; `settings` default to the process's.
    """
    from headwater.settings import get_settings

    settings = settings or get_settings()
    recover_interrupted(db, now)
    performed = 0
    while performed < limit:
        claimed = _claim(db, now, limit - performed)
        if not claimed:
            break
        for row in claimed:
            _perform(db, row, now, settings, publish)
            performed += 1
    return performed


def _lockable(db: Database, query: sa.Select[Any]) -> sa.Select[Any]:
    if db.dialect == "postgresql":
        return query.with_for_update(skip_locked=True, of=automation_action)
    return query


def _claim(db: Database, now: float, limit: int) -> list[sa.RowMapping]:
    """Mark up to `limit` due PENDING actions RUNNING (committed); them, with their firing."""
    earlier = automation_action.alias("earlier")
    waits = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.firing_id == automation_action.c.firing_id,
            earlier.c.position < automation_action.c.position,
            earlier.c.state.in_((PENDING, RUNNING)),
        )
        .exists()
    )
    query = (
        sa.select(*_CLAIMED)
        .where(
            automation_action.c.state == PENDING,
            automation_action.c.next_attempt <= now,
            ~waits,
        )
        .order_by(automation_action.c.next_attempt, automation_action.c.position)
        .limit(limit)
    )
    with db.write() as conn:
        rows = list(conn.execute(_lockable(db, query)).mappings())
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        conn.execute(
            sa.update(automation_action)
            .where(automation_action.c.id.in_(ids))
            .values(state=RUNNING, attempts=automation_action.c.attempts + 1, updated=now)
        )
        firings = {
            row.id: (row.context, row.triggering_event_id)
            for row in conn.execute(
                sa.select(
                    automation_firing.c.id,
                    automation_firing.c.context,
                    automation_firing.c.triggering_event_id,
                ).where(automation_firing.c.id.in_({row["firing_id"] for row in rows}))
            )
        }
    claimed = []
    for row in rows:
        context, _event_id = firings.get(row["firing_id"], ({}, None))
        claimed.append(
            {**row, "attempts": row["attempts"] + 1, "context": context or {}, "claimed": now}
        )
    return claimed  # type: ignore[return-value]


def _perform(
    db: Database,
    row: Any,
    now: float,
    settings: Settings,
    publish: Publish | None,
) -> None:
    """Perform one claimed action and record its outcome; never raises an `Exception`."""
    action_type = str((row["action"] or {}).get("type", "?"))
    try:
        result = _run(db, row, settings, publish)
    except ActionError as exc:
        _record_failure(db, row, str(exc), transient=exc.transient, result=exc.result)
    except Exception as exc:
        message, transient = _classify(exc)
        if not transient and message.startswith("Unexpected"):
            logger.exception("Automation action %s (%s) failed", row["id"], action_type)
        _record_failure(db, row, message, transient=transient, result=None)
    else:
        _record(db, row, COMPLETED, result=result, error=None)


def _run(db: Database, row: Any, settings: Settings, publish: Publish | None) -> dict[str, Any]:
    from pydantic import TypeAdapter, ValidationError

    from headwater.schemas.automations import ActionTypes
    from headwater.server.automations import perform
    from headwater.server.automations.context import template_context
    from headwater.server.automations.failures import PermanentActionError

    try:
        action = TypeAdapter(ActionTypes).validate_python(row["action"])
    except ValidationError as exc:
        raise PermanentActionError(
            f"The stored action is not valid: {exc.errors()[0]['msg']}; fix the automation."
        ) from None
    with db.read() as conn:
        context = template_context(conn, row["context"], settings)
    job = perform.Job(
        db=db,
        action_id=row["id"],
        automation_id=row["automation_id"],
        action=action,
        context=context,
        settings=settings,
        publish=publish,
        retry=row["attempts"] > 1,
        previous=row["result"] if isinstance(row["result"], dict) else None,
    )
    return perform.PERFORMERS[action.type](job)


def _classify(exc: Exception) -> tuple[str, bool]:
    """The error message of an exception an action raised, and whether it is transient."""
    from headwater.exceptions import HeadwaterError

    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    ):
        lines = str(exc.orig or exc).strip().splitlines()
        return f"The database was not available: {lines[0] if lines else type(exc).__name__}", True
    if isinstance(exc, HeadwaterError | ValueError):  # not found, conflict, bad template...
        return str(exc), False
    return f"Unexpected {type(exc).__name__}: {exc}", False


def _record_failure(
    db: Database, row: Any, message: str, *, transient: bool, result: dict[str, Any] | None
) -> None:
    attempts = row["attempts"]
    if transient and attempts < MAX_ATTEMPTS:
        delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
        _record(
            db,
            row,
            PENDING,
            result=result,
            error=f"{message} (attempt {attempts} of {MAX_ATTEMPTS}; trying again in {delay:g} s)",
            delay=delay,
        )
        return
    if transient:
        message = f"{message} (gave up after {attempts} attempts)"
    _record(db, row, FAILED, result=result, error=message)


def _record(
    db: Database,
    row: Any,
    state: str,
    *,
    result: dict[str, Any] | None,
    error: str | None,
    delay: float = 0.0,
) -> None:
    """Store the outcome (only if the row is still this attempt's) and its event."""
    from headwater.server.automations.service import nudge

    when = max(time.time(), row["claimed"])
    values: dict[str, Any] = {"state": state, "result": result, "error": error, "updated": when}
    if state == PENDING:
        values["next_attempt"] = when + delay
    with db.write() as conn:
        changed = conn.execute(
            sa.update(automation_action)
            .where(
                automation_action.c.id == row["id"],
                automation_action.c.state == RUNNING,
                automation_action.c.attempts == row["attempts"],
            )
            .values(values)
        ).rowcount
        if changed and state != PENDING:
            _write_event(conn, row, state, result=result, error=error, when=when)
    if changed and state != PENDING:
        nudge()
    if not changed:
        logger.warning(
            "Automation action %s was taken back while it ran (it took longer than %g s); "
            "its outcome (%s) is not recorded.",
            row["id"],
            STALE_AFTER_SECONDS,
            state,
        )


def _write_event(
    conn: sa.Connection,
    row: Any,
    state: str,
    *,
    result: dict[str, Any] | None,
    error: str | None,
    when: float,
) -> None:
    """`headwater.automation.action.completed|failed` about the automation, related to the
    resource of the firing's triggering event."""
    from headwater.core.ids import uuid7
    from headwater.server.repositories.events import insert_events

    context = row["context"] or {}
    automation_info = context.get("automation") or {}
    resource = {RESOURCE_ID: f"headwater.automation.{row['automation_id']}"}
    if automation_info.get("name"):
        resource[RESOURCE_NAME] = str(automation_info["name"])
    related = []
    event_resource = (context.get("event") or {}).get("resource") or {}
    if isinstance(event_resource, dict) and event_resource.get(RESOURCE_ID):
        labels = {RESOURCE_ID: str(event_resource[RESOURCE_ID])}
        if event_resource.get(RESOURCE_NAME):
            labels[RESOURCE_NAME] = str(event_resource[RESOURCE_NAME])
        labels[RESOURCE_ROLE] = _role_of(labels[RESOURCE_ID])
        related.append(labels)
    payload: dict[str, Any] = {
        "action_type": (row["action"] or {}).get("type"),
        "action_id": str(row["id"]),
        "position": row["position"],
        "firing_id": str(row["firing_id"]),
        "attempts": row["attempts"],
    }
    if state == COMPLETED:
        payload["result"] = result
    else:
        payload["error"] = error
    event_row = (
        uuid7().hex,
        when,
        f"headwater.automation.action.{'completed' if state == COMPLETED else 'failed'}",
        resource[RESOURCE_ID],
        resource,
        related,
        payload,
        None,
        when,
    )
    insert_events(conn, [event_row])


def _role_of(resource_id: str) -> str:
    """ "flow-run" for headwater.flow-run.<id>; "triggering-resource" for other ids."""
    parts = resource_id.split(".")
    if len(parts) >= 3 and parts[0] == "headwater":
        return parts[1]
    return "triggering-resource"


def recover_interrupted(db: Database, now: float) -> int:
    """Take back actions left RUNNING by a stopped process; how many.

    Safe-to-repeat actions become PENDING (due now); notifications and webhooks
    (at most once) and actions out of attempts become FAILED, with an event.
    """
    from headwater.server.automations.perform import AT_MOST_ONCE
    from headwater.server.automations.service import nudge

    query = sa.select(*_CLAIMED).where(
        automation_action.c.state == RUNNING,
        automation_action.c.updated < now - STALE_AFTER_SECONDS,
    )
    failed = 0
    with db.write() as conn:
        rows = list(conn.execute(_lockable(db, query)).mappings())
        if not rows:
            return 0
        firings = dict(
            conn.execute(
                sa.select(automation_firing.c.id, automation_firing.c.context).where(
                    automation_firing.c.id.in_({row["firing_id"] for row in rows})
                )
            ).all()
        )
        for row in rows:
            action_type = (row["action"] or {}).get("type")
            if action_type in AT_MOST_ONCE:
                error: str | None = INTERRUPTED
            elif row["attempts"] >= MAX_ATTEMPTS:
                error = f"The server stopped while performing it, {row['attempts']} times."
            else:
                error = None
            state = PENDING if error is None else FAILED
            conn.execute(
                sa.update(automation_action)
                .where(automation_action.c.id == row["id"])
                .values(
                    state=state,
                    error=error or "Taken back after the server stopped while performing it.",
                    next_attempt=now,
                    updated=now,
                )
            )
            if state == FAILED:
                failed += 1
                full = {**row, "context": firings.get(row["firing_id"]) or {}}
                _write_event(conn, full, FAILED, result=None, error=error, when=now)
    if failed:
        nudge()
    logger.warning("Took back %d automation action(s) interrupted by a stop.", len(rows))
    return len(rows)
