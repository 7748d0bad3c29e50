"""Timestamps. Runs record seconds since the epoch (UTC); this converts for display."""

from __future__ import annotations

import datetime as dt
import time

now = time.time


def to_datetime(timestamp: float | None) -> dt.datetime | None:
    """A UTC-aware datetime for a stored epoch timestamp."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def to_timestamp(value: dt.datetime | float | None) -> float | None:
    """Epoch seconds for a datetime (naive datetimes are taken as UTC) or a number."""
    if value is None or isinstance(value, (int, float)):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()
