"""The app `headwater server start` serves: built from the settings in each worker process.

uvicorn imports `app_from_environment` by name (so `--workers N` can start N
processes); the command passes its options down as environment variables,
which every worker reads through `headwater.settings`. This module is the
composition root: the only one that imports the UI (`headwater.ui`).
"""

from __future__ import annotations

from fastapi import FastAPI

from headwater.server.app import create_app
from headwater.settings import Settings, get_settings


def app_from_environment() -> FastAPI:
    """`create_app` with the process's settings, and the web UI at `/`."""
    from headwater.ui import mount

    settings = get_settings()
    return mount(app_from_settings(settings))


def app_from_settings(settings: Settings) -> FastAPI:
    """The API app `headwater server start` serves, without the UI."""
    return create_app(
        settings,
        api_key=settings.api_key,
        parameters_max_bytes=settings.server_parameters_max_bytes,
        request_max_bytes=settings.server_request_max_bytes,
        records_max_bytes=settings.server_records_max_bytes,
        services=settings.server_services,
        services_interval=settings.server_services_interval,
        stream_poll_interval=settings.server_stream_poll_interval,
    )
