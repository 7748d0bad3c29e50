"""`POST /api/records`: the recorder's batches, written in one transaction.

The hot path of remote runs (about four rows per task run), so the body is
validated from its raw bytes by pydantic-core, not parsed by FastAPI first,
and validation and writing run together in one worker thread.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from headwater.exceptions import PayloadTooLarge
from headwater.schemas.flow_runs import json_size
from headwater.schemas.records import RecordCounts, Records
from headwater.server.api._responses import errors
from headwater.server.automations import service as automations_service
from headwater.server.config import ServerConfig
from headwater.server.database import Database
from headwater.server.dependencies import ConfigDep, DatabaseDep
from headwater.server.notifications import Notifier, NotifierDep, flow_run_ids_of
from headwater.server.repositories.records import write_batch

router = APIRouter(tags=["records"])

_ERRORS = errors(409, 413, 503)


@router.post(
    "/records",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Records"}}},
        }
    },
)
async def ingest_records(
    request: Request, db: DatabaseDep, config: ConfigDep, notifier: NotifierDep
) -> RecordCounts:
    """Write a batch of flows, flow runs, task runs, states, logs and events atomically.

    Each item's keys are the columns of its table; see docs/rest-api.md. Flows,
    states, logs and events are insert-or-ignore by id and runs are upserts by id, so
    sending the same batch again changes nothing. The answer counts the records
    received. May be gzip-compressed (`Content-Encoding: gzip`).
    """
    body = await request.body()
    counts = await run_in_threadpool(_ingest, body, db, config, notifier)
    if len(body) > _TRIM_AFTER_BYTES:
        await run_in_threadpool(release_freed_memory)
    return counts


#: After a batch this large, freed memory is handed back to the operating system.
_TRIM_AFTER_BYTES = 512 * 1024
_libc: Any = None


def release_freed_memory() -> None:
    """Return freed heap to the OS (glibc keeps it otherwise); a no-op elsewhere.

    A large batch is validated into one model per row; once they are freed, the
    allocator would keep the pages and the server's resident memory would stay
    at its high-water mark.
    """
    global _libc
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):
        _libc = False


def _ingest(body: bytes, db: Database, config: ServerConfig, notifier: Notifier) -> RecordCounts:
    try:
        records = Records.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
    for index, flow_run in enumerate(records.flow_runs):
        if flow_run.parameters and json_size(flow_run.parameters) > config.parameters_max_bytes:
            raise PayloadTooLarge(
                f"flow_runs[{index}].parameters is larger than the limit of "
                f"{config.parameters_max_bytes} bytes of JSON; pass large data by reference."
            )
    batch = records.to_batch()
    with db.write() as conn:
        write_batch(conn, batch)
    notifier.publish(flow_run_ids_of(batch))
    if batch.states or batch.events:
        # States became lifecycle events: let the automations service see them now.
        automations_service.nudge()
    return records.counts()
