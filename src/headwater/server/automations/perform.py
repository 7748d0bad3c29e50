"""What each kind of action does, through the repository functions the API uses.

Every function takes a `Job` (the action, its id, the firing's template
context, settings, publish) and returns the JSON result to record, or raises
an `ActionError` (permanent or transient). Each opens its own write
transaction and commits before waking anyone.

Objects are found as the action names them (`deployment_id`, or
`deployment` as "flow/name", ...) or, with `source="inferred"` or when the
action names nothing, from the triggering event: its resource and related
resources (`headwater.deployment.<uuid>`, ...), then the objects of the flow
run it is about.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from headwater.core.events import RESOURCE_ID
from headwater.core.states import TERMINAL_TYPES, StateType
from headwater.schemas import automations as schema
from headwater.server.automations import context as contexts
from headwater.server.automations import notify, ssrf, webhook
from headwater.server.automations.failures import PermanentActionError
from headwater.server.templating import render, render_value
from headwater.store.tables import automation, flow_run, work_pool, work_queue

if TYPE_CHECKING:
    from headwater.server.database import Database
    from headwater.server.services import Publish
    from headwater.settings import Settings

Result = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Job:
    """One action to perform now, with what it needs."""

    db: Database
    action_id: uuid.UUID
    automation_id: uuid.UUID
    action: Any  # one of the models of schemas/automations.py
    context: dict[str, Any]  # the template context (firing context + looked-up objects)
    settings: Settings
    publish: Publish | None
    #: a previous attempt may have done the work (it crashed or failed after)
    retry: bool
    #: what a previous attempt recorded (e.g. notifications already delivered)
    previous: dict[str, Any] | None

    @property
    def event(self) -> dict[str, Any] | None:
        event = self.context.get("event")
        return event if isinstance(event, dict) else None

    @property
    def automation_name(self) -> str:
        return str((self.context.get("automation") or {}).get("name") or self.automation_id)

    def wake(self, flow_run_ids: list[uuid.UUID]) -> None:
        if flow_run_ids:
            from headwater.server.services import wake

            wake(self.db, [run_id.hex for run_id in flow_run_ids], self.publish)


def _inferred(job: Job) -> dict[str, uuid.UUID]:
    """The objects the triggering event names, plus those of the flow run it is about."""
    ids = contexts.resource_ids(job.event)
    run_id = ids.get("flow_run")
    if run_id is not None:
        with job.db.read() as conn:
            row = (
                conn.execute(
                    sa.select(
                        flow_run.c.deployment_id,
                        flow_run.c.work_pool_id,
                        flow_run.c.work_queue_id,
                    ).where(flow_run.c.id == run_id)
                )
                .mappings()
                .first()
            )
        if row is not None:
            for kind in ("deployment", "work_pool", "work_queue"):
                if row[f"{kind}_id"] is not None:
                    ids.setdefault(kind, row[f"{kind}_id"])
    return ids


def _missing(what: str, job: Job, fields: str) -> PermanentActionError:
    event = job.event or {}
    resource = (event.get("resource") or {}).get(RESOURCE_ID, "?")
    return PermanentActionError(
        f"{job.action.type}: the triggering event ({event.get('event', 'none')} on "
        f"{resource}) names no {what}; give {fields} in the action."
    )


# -- deployments ------------------------------------------------------------------------


def _deployment_id(job: Job) -> uuid.UUID:
    from headwater.exceptions import ObjectNotFound
    from headwater.server.repositories import deployments

    action = job.action
    if action.source == "selected" and action.deployment_id is not None:
        return uuid.UUID(str(action.deployment_id))
    if action.source == "selected" and action.deployment is not None:
        flow_name, slash, name = str(action.deployment).partition("/")
        if not slash or not flow_name or not name:
            raise PermanentActionError(
                f"{action.type}: deployment {action.deployment!r} must be 'flow/deployment', "
                "e.g. 'etl/nightly'."
            )
        with job.db.read() as conn:
            try:
                return deployments.read_by_name(conn, flow_name=flow_name, name=name).id
            except ObjectNotFound as exc:
                raise PermanentActionError(f"{action.type}: {exc}") from None
    found = _inferred(job).get("deployment")
    if found is None:
        raise _missing("deployment", job, "deployment_id or deployment ('flow/name')")
    return found


def run_deployment(job: Job) -> Result:
    """Create a run of the deployment; a retry finds the run made before (idempotency key)."""
    from pydantic import ValidationError

    from headwater.engine.names import generate_run_name
    from headwater.schemas.deployments import DeploymentFlowRunCreate
    from headwater.server.repositories import deployments

    action: schema.RunDeployment = job.action
    deployment_id = _deployment_id(job)
    parameters = render_value(action.parameters or {}, job.context, "parameters")
    job_variables = (
        None
        if action.job_variables is None
        else render_value(action.job_variables, job.context, "job_variables")
    )
    try:
        body = DeploymentFlowRunCreate(
            parameters=parameters,
            job_variables=job_variables,
            idempotency_key=f"automation-action:{job.action_id}",
        )
    except ValidationError as exc:
        raise PermanentActionError(f"run-deployment: {exc.errors()[0]['msg']}") from None
    with job.db.write() as conn:
        run_id, created = deployments.create_flow_run(
            conn, deployment_id=deployment_id, body=body, name=generate_run_name()
        )
        name = conn.execute(sa.select(flow_run.c.name).where(flow_run.c.id == run_id)).scalar()
    if created:
        job.wake([run_id])  # a long-polling worker claims it within milliseconds
    return {
        "flow_run_id": str(run_id),
        "flow_run_name": name,
        "deployment_id": str(deployment_id),
        "created": created,
    }


def set_deployment_paused(job: Job, paused: bool) -> Result:
    from headwater.schemas.deployments import DeploymentUpdate
    from headwater.server.repositories import deployments

    deployment_id = _deployment_id(job)
    with job.db.write() as conn:
        updated = deployments.update(
            conn, deployment_id=deployment_id, body=DeploymentUpdate(paused=paused)
        )
    return {"deployment_id": str(deployment_id), "name": updated.name, "paused": updated.paused}


# -- work pools and queues --------------------------------------------------------------


def _pool_name(job: Job, conn: sa.Connection) -> str:
    action = job.action
    if action.source == "selected" and action.work_pool is not None:
        return str(action.work_pool)
    pool_id = action.work_pool_id if action.source == "selected" else None
    if pool_id is None:
        pool_id = _inferred(job).get("work_pool")
    if pool_id is None:
        raise _missing("work pool", job, "work_pool_id or work_pool")
    name = conn.execute(sa.select(work_pool.c.name).where(work_pool.c.id == pool_id)).scalar()
    if name is None:
        raise PermanentActionError(f"{action.type}: no work pool found with id {str(pool_id)!r}.")
    return str(name)


def set_work_pool_paused(job: Job, paused: bool) -> Result:
    from headwater.server.repositories import work_pools

    now = time.time()
    with job.db.write() as conn:
        name = _pool_name(job, conn)
        updated = work_pools.update_pool(conn, name=name, changes={"paused": paused}, now=now)
        due = [] if paused else work_pools.due_runs(conn, pool_id=updated.id, now=now)
    job.wake(due)
    return {"work_pool_id": str(updated.id), "name": name, "paused": updated.paused}


def set_work_queue_paused(job: Job, paused: bool) -> Result:
    from headwater.server.repositories import work_pools

    action = job.action
    now = time.time()
    with job.db.write() as conn:
        if action.source == "selected" and action.work_queue is not None:
            if action.work_pool is None:
                raise PermanentActionError(
                    f"{action.type}: work_queue {action.work_queue!r} needs its work_pool too."
                )
            pool, queue = str(action.work_pool), str(action.work_queue)
        else:
            queue_id = action.work_queue_id if action.source == "selected" else None
            if queue_id is None:
                queue_id = _inferred(job).get("work_queue")
            if queue_id is None:
                raise _missing("work queue", job, "work_queue_id, or work_pool and work_queue")
            row = conn.execute(
                sa.select(work_queue.c.name, work_pool.c.name.label("pool"))
                .join_from(work_queue, work_pool, work_pool.c.id == work_queue.c.work_pool_id)
                .where(work_queue.c.id == queue_id)
            ).first()
            if row is None:
                raise PermanentActionError(
                    f"{action.type}: no work queue found with id {str(queue_id)!r}."
                )
            pool, queue = str(row.pool), str(row.name)
        updated = work_pools.update_queue(
            conn, pool=pool, name=queue, changes={"paused": paused}, now=now
        )
        due = (
            []
            if paused
            else work_pools.due_runs(
                conn, pool_id=updated.work_pool_id, queue_id=updated.id, now=now
            )
        )
    job.wake(due)
    return {
        "work_queue_id": str(updated.id),
        "work_pool": pool,
        "name": queue,
        "paused": updated.paused,
    }


# -- automations ------------------------------------------------------------------------


def set_automation_enabled(job: Job, enabled: bool) -> Result:
    action = job.action
    with job.db.write() as conn:
        if action.source == "selected" and action.automation_id is not None:
            condition = automation.c.id == action.automation_id
            named = f"with id {str(action.automation_id)!r}"
        elif action.source == "selected" and action.automation is not None:
            condition = automation.c.name == action.automation
            named = f"named {action.automation!r}"
        else:
            # The automation the event is about, else the one that fired.
            event_resource = ((job.event or {}).get("resource") or {}).get(RESOURCE_ID, "")
            target = job.automation_id
            prefix = "headwater.automation."
            if isinstance(event_resource, str) and event_resource.startswith(prefix):
                with contextlib.suppress(ValueError):
                    target = uuid.UUID(event_resource[len(prefix) :])
            condition = automation.c.id == target
            named = f"with id {str(target)!r}"
        row = conn.execute(sa.select(automation.c.id, automation.c.name).where(condition)).first()
        if row is None:
            raise PermanentActionError(f"{action.type}: no automation found {named}.")
        conn.execute(
            sa.update(automation)
            .where(automation.c.id == row.id)
            .values(enabled=enabled, updated=time.time())
        )
    return {"automation_id": str(row.id), "name": row.name, "enabled": enabled}


# -- flow runs --------------------------------------------------------------------------


def _flow_run_id(job: Job) -> uuid.UUID:
    run_id = contexts.resource_ids(job.event).get("flow_run")
    if run_id is None:
        raise _missing("flow run", job, "nothing: this action acts on the event's flow run; ")
    return run_id


def _run_result(conn: sa.Connection, run_id: uuid.UUID, **extra: Any) -> Result:
    row = conn.execute(
        sa.select(flow_run.c.state_type, flow_run.c.state_name).where(flow_run.c.id == run_id)
    ).first()
    assert row is not None
    return {"flow_run_id": str(run_id), "state_type": row[0], "state_name": row[1], **extra}


def cancel_flow_run(job: Job) -> Result:
    from headwater.exceptions import Conflict
    from headwater.server.repositories import claims, flow_runs

    run_id = _flow_run_id(job)
    with job.db.write() as conn:
        try:
            claims.cancel(
                conn, flow_run_id=run_id, message=f"Cancelled by automation {job.automation_name}."
            )
        except Conflict:
            current = flow_runs.current_state(conn, flow_run_id=run_id).state_type
            if not (job.retry and current is StateType.CANCELLED):
                raise
        result = _run_result(conn, run_id)
    job.wake([run_id])
    return result


def suspend_flow_run(job: Job) -> Result:
    """Suspend a run not started yet: it leaves its queue until resumed. A running run is
    refused (its process would not notice and would overwrite the state)."""
    from headwater.core.ids import uuid7_hex
    from headwater.exceptions import Conflict
    from headwater.server.repositories import flow_runs
    from headwater.server.repositories.deployment_runs import dequeue

    run_id = _flow_run_id(job)
    message = f"Suspended by automation {job.automation_name}."
    with job.db.write() as conn:
        current = flow_runs.current_state(conn, flow_run_id=run_id)
        kind = current.state_type
        if kind is StateType.PAUSED and job.retry:
            pass  # the attempt before suspended it
        elif kind is StateType.RUNNING:
            # Its process would not notice and would overwrite the state when it ends.
            raise Conflict(
                f"Flow run {str(run_id)!r} is already running: a running flow run can only "
                "suspend itself (suspend_flow_run() in the flow). Use cancel-flow-run to stop it."
            )
        elif kind in (StateType.SCHEDULED, StateType.PENDING):
            if not flow_runs.change_state(
                conn,
                flow_run_id=run_id,
                current=current,
                state_id=uuid.UUID(uuid7_hex()),
                state_type=StateType.PAUSED,
                name="Suspended",
                message=message,
                timestamp=max(time.time(), current.state_timestamp),
            ):
                raise Conflict("The run's state changed meanwhile; read it again and retry.")
            conn.execute(
                sa.update(flow_run)
                .where(flow_run.c.id == run_id)
                .values(worker_id=None, claim_token=None)
            )
            dequeue(conn, [run_id])
        else:
            raise Conflict(
                f"Flow run {str(run_id)!r} is {kind.value}: only a scheduled, pending or "
                "running flow run can be suspended."
            )
        result = _run_result(conn, run_id)
    job.wake([run_id])
    return result


def resume_flow_run(job: Job) -> Result:
    from headwater.exceptions import Conflict
    from headwater.server.repositories import flow_runs, inputs

    run_id = _flow_run_id(job)
    with job.db.write() as conn:
        try:
            resumed = inputs.resume(conn, flow_run_id=run_id, run_input=None)
        except Conflict:
            current = flow_runs.current_state(conn, flow_run_id=run_id).state_type
            if not (job.retry and current is not StateType.PAUSED):
                raise
            resumed = None
        result = _run_result(conn, run_id)
    if resumed is not None and resumed.refusal:
        raise PermanentActionError(resumed.refusal)
    job.wake([run_id])
    return result


def change_flow_run_state(job: Job) -> Result:
    """Force the run into the state (as `headwater flow-run set-state --force` would)."""
    from headwater.exceptions import Conflict
    from headwater.server.repositories import claims, flow_runs, states
    from headwater.server.repositories.deployment_runs import dequeue

    action: schema.ChangeFlowRunState = job.action
    run_id = _flow_run_id(job)
    state_type = StateType(action.state)
    name = render(action.name, job.context, "name") if action.name else state_type.value.title()
    message = (
        render(action.message, job.context, "message")
        if action.message
        else f"State changed by automation {job.automation_name}."
    )
    # One state id per action: a retry finds the state recorded and changes nothing.
    state_id = uuid.uuid5(job.action_id, "change-flow-run-state")
    with job.db.write() as conn:
        current = flow_runs.current_state(conn, flow_run_id=run_id)
        if states.read(conn, state_id=state_id) is None:
            now = max(time.time(), current.state_timestamp)
            if not flow_runs.change_state(
                conn,
                flow_run_id=run_id,
                current=current,
                state_id=state_id,
                state_type=state_type,
                name=name,
                message=message,
                timestamp=now,
            ):
                raise Conflict("The run's state changed meanwhile; read it again and retry.")
            if state_type is StateType.SCHEDULED:
                row = (
                    conn.execute(
                        sa.select(
                            flow_run.c.flow_id,
                            flow_run.c.deployment_id,
                            flow_run.c.work_pool_id,
                            flow_run.c.work_queue_id,
                        ).where(flow_run.c.id == run_id)
                    )
                    .mappings()
                    .one()
                )
                claims.requeue(conn, run_id, row, now)
            elif state_type in TERMINAL_TYPES or state_type is StateType.PAUSED:
                dequeue(conn, [run_id])
        result = _run_result(conn, run_id)
    job.wake([run_id])
    return result


# -- notifications and webhooks ---------------------------------------------------------


def allow_list(settings: Settings) -> ssrf.AllowList:
    try:
        return ssrf.AllowList.parse(settings.server_automations_allowed_hosts)
    except ValueError as exc:
        raise PermanentActionError(str(exc)) from None


def send_notification(job: Job) -> Result:
    action: schema.SendNotification = job.action
    subject = render(action.subject, job.context, "subject")
    body = render(action.body, job.context, "body")
    with job.db.read() as conn:
        urls = notify.notification_urls(conn, action, job.settings)
    delivered = (job.previous or {}).get("delivered")
    return notify.deliver(
        urls,
        subject,
        body,
        allowed=allow_list(job.settings),
        delivered_before=delivered if isinstance(delivered, list) else None,
    )


def call_webhook(job: Job) -> Result:
    action: schema.CallWebhook = job.action
    url = render(action.url, job.context, "url").strip()
    body = render(action.payload, job.context, "payload")
    headers = {
        key: render(value, job.context, f"headers.{key}") for key, value in action.headers.items()
    }
    return webhook.call(
        url,
        method=action.method,
        headers=headers,
        body=body,
        timeout=action.timeout,
        allowed=allow_list(job.settings),
        action_id=str(job.action_id),
    )


def do_nothing(job: Job) -> Result:
    return {}


#: What performs each action type.
PERFORMERS: dict[str, Callable[[Job], Result]] = {
    "do-nothing": do_nothing,
    "run-deployment": run_deployment,
    "pause-deployment": lambda job: set_deployment_paused(job, True),
    "resume-deployment": lambda job: set_deployment_paused(job, False),
    "pause-work-pool": lambda job: set_work_pool_paused(job, True),
    "resume-work-pool": lambda job: set_work_pool_paused(job, False),
    "pause-work-queue": lambda job: set_work_queue_paused(job, True),
    "resume-work-queue": lambda job: set_work_queue_paused(job, False),
    "pause-automation": lambda job: set_automation_enabled(job, False),
    "resume-automation": lambda job: set_automation_enabled(job, True),
    "cancel-flow-run": cancel_flow_run,
    "suspend-flow-run": suspend_flow_run,
    "resume-flow-run": resume_flow_run,
    "change-flow-run-state": change_flow_run_state,
    "send-notification": send_notification,
    "call-webhook": call_webhook,
}

#: Actions that may deliver twice if retried after a crash: at most once, never retried then.
AT_MOST_ONCE = frozenset({"send-notification", "call-webhook"})
