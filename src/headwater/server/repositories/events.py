"""Events in the store: written with their inbox entry, read through filters.

Every event goes to `event` and, in the same transaction, to `event_inbox`,
from which the automations service takes it exactly once. Ids are
insert-or-ignore: writing an event again (a retried request) changes nothing
and does not count twice.

    with db.write() as conn:
        insert_events(conn, [Event(event="x", resource={...}).to_row()])
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from headwater.core.ids import uuid7
from headwater.core.records import Row
from headwater.exceptions import ObjectNotFound
from headwater.schemas.event_filters import (
    MAX_BUCKETS,
    UNIT_SECONDS,
    Countable,
    CountQuery,
    EventCount,
    EventFilter,
    EventQuery,
    bucket_bounds,
)
from headwater.schemas.events import Event
from headwater.store import columns, sa_writer
from headwater.store.tables import event, event_inbox


def insert_events(conn: sa.Connection, rows: Sequence[Row]) -> int:
    """Write event rows (`columns.EVENT` order) and their inbox entries; how many were new.

    Ids may be `uuid.UUID`s or hex; JSON columns values or JSON text; a None
    `received` is now. Runs the store writers' set-based statements (one
    executemany on SQLite, one statement per 2,000 events on PostgreSQL).
    """
    if not rows:
        return 0
    return sa_writer.write_events(conn, (), events=rows)


def record_state_events(conn: sa.Connection, states: Sequence[Mapping[str, Any] | Row]) -> int:
    """Write the lifecycle events of state rows just inserted (dicts or `columns.STATE` tuples).

    Call beside every insert into `state`, in the same transaction: each state
    row becomes `headwater.flow-run.<name>` or `headwater.task-run.<name>` with
    the run's labels and related resources (flow, deployment, work pool, work
    queue, tags), its id the state's id. Returns how many events were new.
    """
    if not states:
        return 0
    rows = [
        tuple(state[c] for c in columns.STATE) if isinstance(state, Mapping) else tuple(state)
        for state in states
    ]
    return sa_writer.write_events(
        conn,
        [
            (
                _hex(state_id),
                None if flow_run_id is None else _hex(flow_run_id),
                None if task_run_id is None else _hex(task_run_id),
                state_type,
                name,
                message,
                timestamp,
            )
            for state_id, flow_run_id, task_run_id, state_type, name, message, timestamp in rows
        ],
    )


def _hex(value: Any) -> str:
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).hex


# -- reading ---------------------------------------------------------------------------------

_RELATED_SQLITE = (
    "EXISTS (SELECT 1 FROM json_each(event.related) AS related_resource "
    "WHERE json_extract(related_resource.value, '$.\"headwater.resource.id\"') IN :related_ids)"
)
_RELATED_POSTGRESQL = (
    "EXISTS (SELECT 1 FROM jsonb_array_elements(event.related) AS related_resource "
    "WHERE related_resource ->> 'headwater.resource.id' IN :related_ids)"
)


def _name_condition(column: Any, patterns: Sequence[str]) -> sa.ColumnElement[bool]:
    """Exact values (one IN) or prefixes (`x*`, LIKE with escaping): any may match."""
    exact = [p for p in patterns if not p.endswith("*")]
    alternatives: list[sa.ColumnElement[bool]] = [
        column.startswith(p[:-1], autoescape=True) for p in patterns if p.endswith("*") and p != "*"
    ]
    if "*" in patterns:
        return sa.true()
    if exact:
        alternatives.append(column.in_(exact))
    return sa.or_(sa.false(), *alternatives)


def conditions(conn: sa.Connection, flt: EventFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of an event filter (see `schemas.event_filters`)."""
    where: list[sa.ColumnElement[bool]] = []
    if flt.since is not None:
        where.append(event.c.occurred >= flt.since)
    if flt.until is not None:
        where.append(event.c.occurred <= flt.until)
    if flt.event:
        where.append(_name_condition(event.c.event, flt.event))
    if flt.resource_id:
        where.append(_name_condition(event.c.resource_id, flt.resource_id))
    if flt.related_id:
        sql = _RELATED_POSTGRESQL if conn.dialect.name == "postgresql" else _RELATED_SQLITE
        where.append(
            sa.text(sql)
            .bindparams(sa.bindparam("related_ids", list(flt.related_id), expanding=True))
            .self_group()  # type: ignore[arg-type]
        )
    for label, patterns in flt.resource.items():
        value = event.c.resource[label].as_string()
        where.append(_name_condition(value, [patterns] if isinstance(patterns, str) else patterns))
    return where


def _event(row: Any) -> Event:
    return Event.model_validate(
        {
            "id": row.id,
            "occurred": row.occurred,
            "event": row.event,
            "resource": row.resource,
            "related": row.related,
            "payload": row.payload,
            "follows": row.follows,
            "received": row.received,
        }
    )


_COLUMNS = [event.c[name] for name in columns.EVENT if name != "resource_id"]


def query_events(conn: sa.Connection, query: EventQuery) -> tuple[list[Event], int]:
    """A page of the events matching `query`, and how many match in all."""
    where = conditions(conn, query)
    order = event.c.occurred.desc() if query.order == "desc" else event.c.occurred.asc()
    tiebreak = event.c.id.desc() if query.order == "desc" else event.c.id.asc()
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .where(*where)
        .order_by(order, tiebreak)
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    total = conn.execute(sa.select(sa.func.count()).select_from(event).where(*where)).scalar_one()
    return [_event(row) for row in rows], int(total)


def read_event(conn: sa.Connection, *, event_id: uuid.UUID) -> Event:
    """The event with this id.

    Raises:
        ObjectNotFound: there is none (never stored, or removed by retention).
    """
    row = conn.execute(sa.select(*_COLUMNS).where(event.c.id == event_id)).first()
    if row is None:
        raise ObjectNotFound(
            f"No event found with id {str(event_id)!r}; it may be older than the retention "
            "period (HEADWATER_SERVER_EVENTS_RETENTION_DAYS)."
        )
    return _event(row)


def received_after(
    conn: sa.Connection,
    flt: EventFilter,
    *,
    received: float,
    after_id: uuid.UUID | None = None,
    before: float | None = None,
    limit: int,
) -> list[Event]:
    """Events matching `flt` received after (`received`, `after_id`), oldest received first.

    Without `after_id`, from `received` on (inclusive); with `before`, only those
    received before it. The stream pages with the (received, id) of its last event.
    """
    if after_id is None:
        window: sa.ColumnElement[bool] = event.c.received >= received
    else:
        window = sa.or_(
            event.c.received > received,
            sa.and_(event.c.received == received, event.c.id > after_id),
        )
    where = [window, *conditions(conn, flt)]
    if before is not None:
        where.append(event.c.received < before)
    rows = conn.execute(
        sa.select(*_COLUMNS).where(*where).order_by(event.c.received, event.c.id).limit(limit)
    ).all()
    return [_event(row) for row in rows]


def _epoch(conn: sa.Connection) -> sa.ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", event.c.occurred)
    return sa.cast(event.c.occurred, sa.Float)


def count_events(
    conn: sa.Connection, countable: Countable, query: CountQuery, now: float
) -> list[EventCount]:
    """Events matching `query.filter` counted by event name, resource, day or time bucket."""
    where = conditions(conn, query.filter)
    if countable in (Countable.event, Countable.resource):
        column = event.c.event if countable is Countable.event else event.c.resource_id
        rows = conn.execute(
            sa.select(column.label("value"), sa.func.count().label("n"))
            .where(*where)
            .group_by(column)
            .order_by(sa.func.count().desc(), column)
            .limit(query.limit)
        ).all()
        return [EventCount(value=r.value, label=r.value, count=r.n) for r in rows]
    size = (
        86400.0 if countable is Countable.day else UNIT_SECONDS[query.unit.value] * query.interval
    )
    since = query.filter.since
    until = query.filter.until if query.filter.until is not None else now
    if since is not None and (until - since) / size > MAX_BUCKETS:
        raise ValueError(
            f"{(until - since) / size:.0f} buckets of {size:g} s between since and until; at "
            f"most {MAX_BUCKETS}: choose a larger interval or unit, or a shorter window"
        )
    bucket = (
        sa.cast(sa.func.floor(_epoch(conn) / size), sa.BigInteger)
        if conn.dialect.name == ("postgresql")
        else sa.cast(_epoch(conn) / size, sa.BigInteger)
    )
    rows = conn.execute(
        sa.select(bucket.label("bucket"), sa.func.count().label("n"))
        .where(*where)
        .group_by(bucket)
        .order_by(bucket)
        .limit(MAX_BUCKETS)
    ).all()
    counts = {int(r.bucket): int(r.n) for r in rows}
    if since is not None:
        # Every bucket of the window, empty ones too, so a chart has no gaps.
        first, last = int(since // size), int(until // size)
        keys = range(first, last + 1)
    else:
        keys = range(0)
    ordered = list(keys) if keys else sorted(counts)
    result = []
    for key in ordered[:MAX_BUCKETS]:
        start, end = bucket_bounds(key * size, size)
        result.append(
            EventCount(
                value=start.isoformat(),
                label=start.date().isoformat() if countable is Countable.day else start.isoformat(),
                count=counts.get(key, 0),
                start_time=start,
                end_time=end,
            )
        )
    return result


def delete_older_than(conn: sa.Connection, cutoff: float, *, limit: int = 5000) -> int:
    """Delete up to `limit` events that occurred before `cutoff`, with their inbox rows."""
    ids = list(
        conn.execute(sa.select(event.c.id).where(event.c.occurred < cutoff).limit(limit)).scalars()
    )
    if not ids:
        return 0
    conn.execute(sa.delete(event_inbox).where(event_inbox.c.event_id.in_(ids)))
    return int(conn.execute(sa.delete(event).where(event.c.id.in_(ids))).rowcount)


def emit(
    conn: sa.Connection,
    event_name: str,
    *,
    kind: str,
    resource_id: uuid.UUID,
    name: str | None,
    related: Sequence[tuple[str, uuid.UUID | None, str | None]] = (),
    payload: dict[str, Any] | None = None,
) -> None:
    """Write one `headwater.<kind>.<action>` event about a server object, in `conn`'s transaction.

    `related` holds (kind, id, name) of related objects; the kind is also the role.
    Used for deployment, work pool, work queue and worker lifecycle events.
    """
    resource = {RESOURCE_ID: f"headwater.{kind}.{resource_id}"}
    if name is not None:
        resource[RESOURCE_NAME] = name[:1024]
    labels = []
    for related_kind, related_id, related_name in related:
        if related_id is None:
            continue
        item = {RESOURCE_ID: f"headwater.{related_kind}.{related_id}", RESOURCE_ROLE: related_kind}
        if related_name is not None:
            item[RESOURCE_NAME] = related_name[:1024]
        labels.append(item)
    now = time.time()
    insert_events(
        conn,
        [
            (
                uuid7(),
                now,
                event_name,
                resource[RESOURCE_ID],
                resource,
                labels,
                payload or {},
                None,
                now,
            )
        ],
    )
