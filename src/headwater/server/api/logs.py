"""Log lines: write a batch, query by run, level and time."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query

from headwater.core.ids import uuid7_hex
from headwater.core.records import Batch
from headwater.schemas._types import hex_id
from headwater.schemas.common import Page
from headwater.schemas.logs import LogCreate, LogQuery, LogResponse
from headwater.schemas.records import RecordCounts
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.notifications import NotifierDep
from headwater.server.repositories import logs
from headwater.server.repositories.records import write_batch

router = APIRouter(prefix="/logs", tags=["logs"])


def _id(value: str | None) -> str | None:
    return None if value is None else hex_id(value)


@router.post("", responses=errors(413))
def create_logs(db: DatabaseDep, notifier: NotifierDep, body: list[LogCreate]) -> RecordCounts:
    """Record a batch of log lines; lines whose `id` is already recorded are ignored."""
    now = time.time()
    rows = [
        (
            _id(line.id) or uuid7_hex(),
            _id(line.flow_run_id),
            _id(line.task_run_id),
            line.level,
            line.name,
            line.message,
            now if line.timestamp is None else line.timestamp,
        )
        for line in body
    ]
    with db.write() as conn:
        write_batch(conn, Batch(logs=rows))
    notifier.publish(row[1] for row in rows)
    return RecordCounts(logs=len(rows))


@router.get("")
def list_logs(db: DatabaseDep, query: Annotated[LogQuery, Query()]) -> Page[LogResponse]:
    """Log lines matching every filter given, oldest first, a page at a time."""
    with db.read() as conn:
        items, total = logs.list_logs(conn, query=query)
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)
