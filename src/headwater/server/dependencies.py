"""FastAPI dependencies: the database and the server's configuration, from the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from headwater.server.config import ServerConfig
from headwater.server.database import Database


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_config(request: Request) -> ServerConfig:
    config: ServerConfig = request.app.state.config
    return config


DatabaseDep = Annotated[Database, Depends(get_database)]
ConfigDep = Annotated[ServerConfig, Depends(get_config)]
