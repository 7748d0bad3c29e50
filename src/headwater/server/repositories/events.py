"""Events in the store: written with their inbox entry, read through filters.

Every event goes to `event` and, in the same transaction, to `event_inbox`,
from which the automations service takes it exactly once. Ids are
insert-or-ignore: writing an event again (a retried request) changes nothing
and does not count twice.

    with db.write() as conn:
        insert_events(conn, [Event(event="x", resource={...}).to_row()])
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.records import Row
from headwater.server.repositories._common import upsertable_insert
from headwater.store import columns
from headwater.store.tables import event, event_inbox


def insert_events(conn: sa.Connection, rows: Sequence[Row]) -> int:
    """Write event rows (`columns.EVENT` order) and their inbox entries; how many were new."""
    if not rows:
        return 0
    values = [dict(zip(columns.EVENT, row, strict=True)) for row in rows]
    for value in values:
        value["id"] = _uuid(value["id"])
        if value["follows"] is not None:
            value["follows"] = _uuid(value["follows"])
    inserted = conn.execute(
        upsertable_insert(conn, event).values(values).on_conflict_do_nothing().returning(event.c.id)
    ).scalars()
    new = set(inserted)
    if new:
        conn.execute(
            upsertable_insert(conn, event_inbox).on_conflict_do_nothing(),
            [{"event_id": v["id"], "occurred": v["occurred"]} for v in values if v["id"] in new],
        )
    return len(new)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
