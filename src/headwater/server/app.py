"""The server's app factory: `create_app(settings)` returns a new FastAPI app.

No app, engine or connection exists at import time; each app owns its
database engine, opened at startup (after the schema is brought to head)
and disposed at shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from headwater.schemas.records import Records
from headwater.server import api, errors
from headwater.server.api import stream, webhooks
from headwater.server.automations.service import AutomationsService
from headwater.server.config import ServerConfig
from headwater.server.database import Database
from headwater.server.middleware import ApiKeyMiddleware, BodyLimitMiddleware
from headwater.server.notifications import create_notifier
from headwater.server.services import Services, set_retention_days
from headwater.server.streams import StreamOptions
from headwater.settings import Settings, get_settings

#: Endpoints whose bodies are batches, allowed `records_max_bytes`.
BATCH_PATHS = ("/api/records", "/api/logs")


def create_app(
    settings: Settings | None = None,
    *,
    api_key: str | None = None,
    parameters_max_bytes: int | None = None,
    request_max_bytes: int | None = None,
    records_max_bytes: int | None = None,
    services: bool = False,
    services_interval: float | None = None,
    stream_poll_interval: float | None = None,
    stream_heartbeat_interval: float | None = None,
    claim_max_wait: float | None = None,
) -> FastAPI:
    """A new Headwater API app on the store of `settings` (default: the process's settings).

    Args:
        api_key: require `Authorization: Bearer <api_key>` on every /api route
            except /api/health.
        parameters_max_bytes: the largest flow-run `parameters` (JSON), 512 KiB by default.
        request_max_bytes: the largest request body (4 MiB), except for batches:
        records_max_bytes: the largest body of /api/records and /api/logs (32 MiB).
        services: run the background services in this process.
        services_interval: seconds between two rounds of the services (10).
        stream_poll_interval: seconds between two polls of a live stream when no
            notification woke it (1).
        stream_heartbeat_interval: seconds of silence before a live stream sends a
            heartbeat (15).
        claim_max_wait: the longest a worker's claim request is held open (60).

    Example:
        >>> import uvicorn
        >>> uvicorn.run(create_app(load_settings()), port=4200)
    """
    settings = settings or get_settings()
    defaults = ServerConfig()
    config = ServerConfig(
        api_key=api_key or None,
        parameters_max_bytes=parameters_max_bytes or defaults.parameters_max_bytes,
        request_max_bytes=request_max_bytes or defaults.request_max_bytes,
        records_max_bytes=records_max_bytes or defaults.records_max_bytes,
        services=services,
        services_interval=services_interval or defaults.services_interval,
        claim_max_wait=defaults.claim_max_wait if claim_max_wait is None else claim_max_wait,
    )
    url = settings.effective_database_url
    stream_defaults = StreamOptions()
    stream_options = StreamOptions(
        poll_interval=stream_poll_interval or stream_defaults.poll_interval,
        heartbeat_interval=stream_heartbeat_interval or stream_defaults.heartbeat_interval,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(url)
        database.ensure_schema()
        app.state.database = database
        notifier = create_notifier(url)
        await notifier.start()
        app.state.notifier = notifier
        runner = None
        automations_service = None
        if config.services:
            # On PostgreSQL the services' NOTIFY reaches this process's notifier too.
            publish = notifier.publish if database.dialect == "sqlite" else None
            set_retention_days(settings.server_events_retention_days)
            runner = Services(
                url, interval=config.services_interval, database=database, publish=publish
            )
            automations_service = AutomationsService(
                url,
                database=database,
                publish=publish,
                poll_interval=settings.server_automations_poll_interval,
                settings=settings,
            )
        if runner is not None:
            runner.start()
        if automations_service is not None:
            automations_service.start()
        try:
            yield
        finally:
            if automations_service is not None:
                automations_service.stop()
            if runner is not None:
                runner.stop()
            await notifier.stop()
            database.dispose()

    from headwater._version import __version__

    app = FastAPI(
        title="Headwater",
        version=__version__,
        summary="Orchestration API: flows, flow runs, task runs, states and logs.",
        openapi_url="/api/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.settings = settings  # the secrets API reads its key from them
    app.state.stream_options = stream_options
    app.include_router(api.router(), prefix="/api")
    app.include_router(stream.router, prefix="/api")
    app.include_router(webhooks.hooks_router)
    errors.install(app)
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=config.request_max_bytes,
        limits=dict.fromkeys(BATCH_PATHS, config.records_max_bytes),
    )
    if config.api_key:
        # Added last, so it runs first: unauthenticated bodies are not even read.
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key)
    app.openapi = lambda: _openapi(app, secured=bool(config.api_key))  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, *, secured: bool) -> dict[str, Any]:
    """The OpenAPI document, with the record ingest body and the bearer scheme added."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # /api/records validates its raw body itself (faster); its schema is added here.
    records = Records.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in records.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas["Records"] = records
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "HEADWATER_API_KEY"}
    }
    if secured:
        document["security"] = [{"bearer": []}]
    app.openapi_schema = document
    return document
