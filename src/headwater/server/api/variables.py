"""Variables: create, list, read, set (create or replace), update and delete, by name."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from headwater.schemas.common import Page
from headwater.schemas.variables import (
    VariableCreate,
    VariableName,
    VariableQuery,
    VariableResponse,
    VariableSet,
    VariableUpdate,
)
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import variables

router = APIRouter(prefix="/variables", tags=["variables"])

NamePath = Annotated[VariableName, Path(description="The variable's name.")]


@router.post("", status_code=201, responses=errors(409, 422))
def create_variable(db: DatabaseDep, body: VariableCreate) -> VariableResponse:
    """Create a variable (409 if one has that name)."""
    with db.write() as conn:
        return variables.create(
            conn, name=body.name, value=body.value, tags=body.tags, now=time.time()
        )


@router.get("", responses=errors(422))
def list_variables(
    db: DatabaseDep, query: Annotated[VariableQuery, Query()]
) -> Page[VariableResponse]:
    """Variables matching every filter given, by name, a page at a time."""
    with db.read() as conn:
        items, total = variables.list_variables(conn, query=query)
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/{name}", responses=errors(404, 422))
def read_variable(db: DatabaseDep, name: NamePath) -> VariableResponse:
    """The variable named `name`."""
    with db.read() as conn:
        return variables.read(conn, name=name)


@router.put("/{name}", responses={201: {"model": VariableResponse}, **errors(422)})
def set_variable(
    db: DatabaseDep, name: NamePath, body: VariableSet, response: Response
) -> VariableResponse:
    """Create the variable (201), or replace its value and, if given, its tags (200)."""
    with db.write() as conn:
        item, created = variables.put(
            conn, name=name, value=body.value, tags=body.tags, now=time.time()
        )
    if created:
        response.status_code = 201
    return item


@router.patch("/{name}", responses=errors(404, 422))
def update_variable(db: DatabaseDep, name: NamePath, body: VariableUpdate) -> VariableResponse:
    """Change the fields given: `value` (null is a value) and `tags`."""
    with db.write() as conn:
        return variables.update(
            conn, name=name, changes=body.model_dump(exclude_unset=True), now=time.time()
        )


@router.delete("/{name}", status_code=204, responses=errors(404, 422))
def delete_variable(db: DatabaseDep, name: NamePath) -> Response:
    """Delete the variable."""
    with db.write() as conn:
        variables.delete(conn, name=name)
    return Response(status_code=204)
