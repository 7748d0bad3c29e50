"""Artifacts on the wire, and the checks of their content that the SDK shares.

An artifact is something a run publishes for people to read: a markdown
report, a table, a link, an image (by URL) or a progress bar. Artifacts with
the same `key` are versions of one artifact; the newest is its latest version.

The `check_*` functions are plain (no pydantic) so that `headwater.artifacts`
raises the same errors before sending anything as the API answers with a 422.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from headwater.schemas._types import NAME_LENGTH, Id, Text
from headwater.schemas.common import Paging

#: Prefect's rule for artifact keys.
KEY_RULE = "lowercase letters, digits and dashes"
_KEY = re.compile(r"[a-z0-9-]+")
#: Where a bad value is, in messages: at most this many characters of it.
_SHOWN = 64


class ArtifactType(enum.StrEnum):
    """What an artifact's `data` holds."""

    MARKDOWN = "markdown"  # markdown text
    TABLE = "table"  # {"columns": [names] or null, "rows": [[cells], ...]}
    LINK = "link"  # {"link": url, "link_text": text or null}
    IMAGE = "image"  # the image's URL
    PROGRESS = "progress"  # a number from 0 to 100 (percent)


def check_key(key: str) -> str:
    """`key` if it follows the rule for artifact keys; else a ValueError naming it."""
    if not isinstance(key, str):
        raise ValueError(f"An artifact key must be a string, got {key!r}.")
    if not _KEY.fullmatch(key) or len(key) > NAME_LENGTH:
        raise ValueError(
            f"Artifact key {key[:_SHOWN]!r} is invalid: a key may contain only {KEY_RULE} "
            f"(at most {NAME_LENGTH} characters), e.g. 'daily-report'."
        )
    return key


def check_progress(progress: Any) -> float:
    """`progress` as a float if it is a number from 0 to 100; else a ValueError."""
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise ValueError(f"progress must be a number from 0 to 100 (percent), got {progress!r}.")
    if not 0 <= progress <= 100:  # also refuses NaN
        raise ValueError(f"progress must be from 0 to 100 (percent), got {progress!r}.")
    return float(progress)


def check_table(table: Any) -> dict[str, Any]:
    """`table` as `{"columns": [names] or None, "rows": [[cells], ...]}`, the stored form.

    A table may be given as a list of dicts (rows; the columns are their keys in
    first-seen order, a missing cell is None), a dict of lists (columns, of one
    length), a list of lists (rows, no column names), or in the stored form
    itself. Columns are kept as a list because PostgreSQL's JSONB does not keep
    the order of an object's keys.

    Raises:
        ValueError: another shape, naming the first row or column that does not fit.
    """
    if _is_stored_table(table):
        return {"columns": table["columns"], "rows": [list(row) for row in table["rows"]]}
    if isinstance(table, dict):
        lengths: set[int] = set()
        for column, values in table.items():
            if not isinstance(column, str):
                raise ValueError(f"A table's column names must be strings, got {column!r}.")
            if not isinstance(values, list | tuple):
                raise ValueError(
                    f"A table given as a dict maps each column to a list of its values; column "
                    f"{column[:_SHOWN]!r} holds {_kind(values)}."
                )
            lengths.add(len(values))
        if len(lengths) > 1:
            raise ValueError(
                "The columns of a table given as a dict of lists must have one length; "
                f"they have {sorted(lengths)}."
            )
        columns = list(table)
        return {
            "columns": columns,
            "rows": [list(row) for row in zip(*table.values(), strict=True)],
        }
    if isinstance(table, list | tuple):
        if not table:
            return {"columns": [], "rows": []}
        if not isinstance(table[0], dict | list | tuple):
            raise ValueError(
                "A table given as a list holds rows, each a dict or a list; row 0 is "
                f"{_kind(table[0])}."
            )
        row_kind = dict if isinstance(table[0], dict) else list
        for number, row in enumerate(table):
            fits = isinstance(row, dict) if row_kind is dict else isinstance(row, list | tuple)
            if not fits:
                wanted = "a dict" if row_kind is dict else "a list"
                raise ValueError(
                    f"Every row of a table must be {wanted}, like the first; row {number} "
                    f"is {_kind(row)}."
                )
            if row_kind is dict and not all(isinstance(name, str) for name in row):
                raise ValueError(f"Row {number} of the table has a column name that is not text.")
        if row_kind is list:
            return {"columns": None, "rows": [list(row) for row in table]}
        names: dict[str, None] = {}
        for row in table:
            names.update(dict.fromkeys(row))
        return {
            "columns": list(names),
            "rows": [[row.get(name) for name in names] for row in table],
        }
    raise ValueError(
        "A table must be a list of dicts (rows), a dict of lists (columns) or a list of "
        f"lists (rows); got {_kind(table)}."
    )


def _is_stored_table(table: Any) -> bool:
    """Whether `table` is already `{"columns": ..., "rows": ...}` (e.g. read from the API)."""
    if not isinstance(table, dict) or set(table) != {"columns", "rows"}:
        return False
    columns, rows = table["columns"], table["rows"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return False
    if columns is None:
        return True
    return (
        isinstance(columns, list)
        and all(isinstance(name, str) for name in columns)
        and all(len(row) == len(columns) for row in rows)
    )


def check_json(data: Any, what: str = "data") -> Any:
    """`data` if it is plain JSON that every store keeps: else a ValueError naming where.

    Refuses NaN and infinite numbers (not JSON), NUL characters in text
    (PostgreSQL cannot store them), and types other than dict, list, str,
    int, float, bool and None. Iterative, so deep nesting is not a RecursionError.
    """
    stack: list[tuple[str, Any]] = [(what, data)]
    while stack:
        where, value = stack.pop()
        if value is None or isinstance(value, bool | int):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{where} is {value!r}, which JSON cannot hold; use None.")
        elif isinstance(value, str):
            if "\x00" in value:
                raise ValueError(f"{where} contains a NUL (\\u0000) character.")
        elif isinstance(value, list | tuple):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, dict):
            for name, item in value.items():
                if not isinstance(name, str):
                    raise ValueError(f"{where} has a key {name!r} that is not a string.")
                if "\x00" in name:
                    raise ValueError(f"{where} has a key containing a NUL (\\u0000) character.")
                stack.append((f"{where}[{name[:_SHOWN]!r}]", item))
        else:
            raise ValueError(
                f"{where} is {_kind(value)}, which is not JSON; convert it to a string or "
                "number first."
            )
    return data


def check_data(type: ArtifactType, data: Any) -> Any:
    """`data` if it fits an artifact of `type`; else a ValueError saying what is expected."""
    if type is ArtifactType.PROGRESS:
        return check_progress(data)
    if type is ArtifactType.TABLE:
        table = check_table(data)
        columns = table["columns"]
        check_json(columns, "The table's column names")
        for number, row in enumerate(table["rows"]):
            for index, cell in enumerate(row):
                if cell is None or (isinstance(cell, str | int) and "\x00" not in str(cell)):
                    continue  # the common cells, without a walk
                name = repr(columns[index][:_SHOWN]) if columns else str(index)
                check_json(cell, f"The table's cell in row {number}, column {name},")
        return table
    if type is ArtifactType.LINK:
        if not isinstance(data, dict) or not isinstance(data.get("link"), str):
            raise ValueError('A link artifact\'s data is {"link": URL, "link_text": text or null}.')
        if set(data) - {"link", "link_text"}:
            raise ValueError('A link artifact\'s data has only the keys "link" and "link_text".')
        if not isinstance(data.get("link_text"), str | None):
            raise ValueError("A link artifact's link_text must be text or null.")
        return check_json(data)
    if not isinstance(data, str):
        what = "markdown text" if type is ArtifactType.MARKDOWN else "the image's URL"
        raise ValueError(f"A {type.value} artifact's data is {what}, got {_kind(data)}.")
    return check_json(data)


def _kind(value: Any) -> str:
    """A short description of a value for messages: its type, and a bit of it."""
    shown = repr(value)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "..."
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({shown})"


def _pydantic_key(key: str) -> str:
    return check_key(key)


#: An artifact's key; versions of one artifact share it.
ArtifactKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_LENGTH,
        description=f"Only {KEY_RULE}; artifacts with one key are versions of one artifact.",
    ),
    AfterValidator(_pydantic_key),
]


class ArtifactCreate(BaseModel):
    """Body of `POST /api/artifacts`."""

    model_config = ConfigDict(extra="forbid")

    key: ArtifactKey | None = None
    type: ArtifactType
    description: Text | None = Field(default=None, description="Markdown shown with the artifact.")
    data: Any = Field(
        description="markdown/image: text; table: rows or columns; link: {link, link_text}; "
        "progress: 0 to 100."
    )
    flow_run_id: Id | None = Field(default=None, description="The flow run that published it.")
    task_run_id: Id | None = Field(default=None, description="The task run that published it.")

    @model_validator(mode="after")
    def _data_fits_type(self) -> ArtifactCreate:
        self.data = check_data(self.type, self.data)
        return self


class ArtifactUpdate(BaseModel):
    """Body of `PATCH /api/artifacts/{id}`: a progress artifact's new progress, a description."""

    model_config = ConfigDict(extra="forbid")

    data: Any = Field(default=None, description="New progress (progress artifacts only).")
    description: Text | None = None


class ArtifactResponse(BaseModel):
    id: uuid.UUID
    key: str | None
    type: ArtifactType
    description: str | None
    data: Any
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    created: dt.datetime
    updated: dt.datetime


class ArtifactQuery(Paging):
    """Filters of `GET /api/artifacts` (newest first)."""

    key: ArtifactKey | None = None
    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None
    type: ArtifactType | None = None
    latest_only: bool = Field(
        default=False,
        description="Only the latest version of each key (artifacts without a key all count).",
    )
