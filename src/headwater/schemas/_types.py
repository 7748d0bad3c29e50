"""Field types shared by the wire models: ids, timestamps, bounded text and integers.

The bounds are the store's column limits (`store/tables.py`; a test keeps
them in step), so a value the database would refuse is a 422 naming the
field, not a database error. This module imports nothing from the store:
the wire models sit below it (`core <- schemas <- store <- server`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

#: Epoch seconds of 0001-01-01 and 9999-12-31T23:59:59Z: what every database
#: and Python's datetime can hold.
MIN_TIMESTAMP = -62_135_596_800.0
MAX_TIMESTAMP = 253_402_300_799.0
#: The largest value of an INTEGER column on PostgreSQL.
INT32_MAX = 2**31 - 1

#: Column lengths of `store/tables.py`.
NAME_LENGTH = 255
STATE_TYPE_LENGTH = 16
STATE_NAME_LENGTH = 64
DYNAMIC_KEY_LENGTH = 64

_HEX_ID = re.compile(r"[0-9a-f]{32}")


def hex_id(value: str) -> str:
    """An `Id` as the store writes it: 32 lowercase hex digits, without dashes."""
    if len(value) == 32 and _HEX_ID.fullmatch(value):
        return value
    return value.replace("-", "").lower()


def epoch(value: float | str | dt.datetime) -> float:
    """Epoch seconds from a number, an ISO 8601 string or a datetime (naive ones are UTC)."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str | dt.datetime):
        moment = value if isinstance(value, dt.datetime) else _parse_iso(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        seconds = moment.timestamp()
    else:
        raise ValueError("expected epoch seconds (a number) or an ISO 8601 date-time string")
    # Also rejects NaN, which compares False with everything.
    if not MIN_TIMESTAMP <= seconds <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {value!r} is out of range (years 1 to 9999)")
    return seconds


def _parse_iso(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromtimestamp(float(text), tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"{text[:64]!r} is not a timestamp; send epoch seconds or ISO 8601 "
            "(2024-05-01T14:30:00Z)"
        ) from None


NO_NUL_PATTERN = r"^[^\x00]*$"
UUID_PATTERN = (
    r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)

# The hot types below validate in pydantic-core (Rust patterns and bounds), not in
# Python functions: the record ingest checks about 30 of them per task run.

#: A UUID as text: 32 hex digits or the dashed form; `hex_id` normalises it.
Id = Annotated[
    str,
    Field(pattern=UUID_PATTERN),
    WithJsonSchema({"type": "string", "format": "uuid"}),
]

if TYPE_CHECKING:
    Timestamp = float
else:
    #: A point in time: epoch seconds, or an ISO 8601 string; validated to epoch seconds.
    Timestamp = Annotated[
        Annotated[
            float,
            Field(strict=True, ge=MIN_TIMESTAMP, le=MAX_TIMESTAMP, allow_inf_nan=False),
        ]
        | Annotated[str, AfterValidator(epoch)],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "minimum": MIN_TIMESTAMP, "maximum": MAX_TIMESTAMP},
                    {"type": "string", "format": "date-time"},
                ],
                "description": "Epoch seconds, or ISO 8601 (UTC when it has no offset).",
            }
        ),
    ]

_NO_NUL = NO_NUL_PATTERN

#: Text of any length; PostgreSQL cannot store NUL characters in text.
Text = Annotated[str, Field(pattern=_NO_NUL)]
#: A name that fits a VARCHAR(255) column.
Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH, pattern=_NO_NUL)]
#: A state's display name ("Completed", "Cached").
StateName = Annotated[str, Field(min_length=1, max_length=STATE_NAME_LENGTH, pattern=_NO_NUL)]
#: A task run's key within its flow run.
DynamicKey = Annotated[str, Field(max_length=DYNAMIC_KEY_LENGTH, pattern=_NO_NUL)]
#: A tag: short text.
Tag = Annotated[str, Field(max_length=NAME_LENGTH, pattern=_NO_NUL)]
#: A count that fits an INTEGER column.
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
