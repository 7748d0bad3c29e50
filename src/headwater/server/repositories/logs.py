"""Log lines: query (writes go through `records.write_batch`)."""

from __future__ import annotations

import sqlalchemy as sa

from headwater.schemas.common import utc
from headwater.schemas.logs import LogQuery, LogResponse
from headwater.server.repositories._common import seconds, total
from headwater.store.tables import log


def list_logs(conn: sa.Connection, *, query: LogQuery) -> tuple[list[LogResponse], int]:
    """One page of log lines matching `query`, oldest first, and how many match in all."""
    where: list[sa.ColumnElement[bool]] = []
    if query.flow_run_id is not None:
        where.append(log.c.flow_run_id == query.flow_run_id)
    if query.task_run_id is not None:
        where.append(log.c.task_run_id == query.task_run_id)
    if query.min_level is not None:
        where.append(log.c.level >= query.min_level)
    if query.since is not None:
        where.append(log.c.timestamp >= seconds(query.since))
    if query.until is not None:
        where.append(log.c.timestamp <= seconds(query.until))
    select = sa.select(log).where(*where)
    rows = conn.execute(
        select.order_by(log.c.timestamp, log.c.id).offset(query.offset).limit(query.limit)
    ).mappings()
    items = [
        LogResponse(
            id=row["id"],
            flow_run_id=row["flow_run_id"],
            task_run_id=row["task_run_id"],
            level=row["level"],
            name=row["name"],
            message=row["message"],
            timestamp=utc(row["timestamp"]),
        )
        for row in rows
    ]
    if query.offset == 0 and len(items) < query.limit:
        return items, len(items)
    return items, total(conn, select)
