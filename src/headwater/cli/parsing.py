"""Parse option values the CLI validates itself, with messages that say what to type.

Each parser raises `BadOptionValue`, which the command turns into one red line.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable

from headwater.core.states import StateType
from headwater.exceptions import HeadwaterError

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


class BadOptionValue(HeadwaterError):
    """A command-line option has a value the CLI cannot use."""


def parse_time(text: str, option: str, *, now: float | None = None) -> float:
    """Epoch seconds for an ISO 8601 date/time or a relative time ago ("30m", "2d").

    ISO values without a time zone are local time, as the tables show them.

    Example:
        >>> parse_time("1h", "--since", now=7200.0)
        3600.0
    """
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        reference = time.time() if now is None else now
        return reference - float(amount) * _UNIT_SECONDS[unit.lower()]
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadOptionValue(
            f"Invalid time {text!r} for {option}; use an ISO date or time such as "
            "2024-05-01 or 2024-05-01T14:30, or a time ago such as 30s, 15m, 1h, 2d, 1w."
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # interpret as local time
    return moment.timestamp()


def parse_states(values: Iterable[str]) -> list[StateType] | None:
    """State types from `--state` values (any case, repeatable or comma-separated).

    Returns None when no value was given (no filter).
    """
    states: list[StateType] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            if not name:
                continue
            try:
                states.append(StateType(name))
            except ValueError:
                choices = ", ".join(member.value for member in StateType)
                raise BadOptionValue(
                    f"Unknown state {part.strip()!r}; choose from: {choices}."
                ) from None
    return states or None


def parse_level(text: str) -> int:
    """A `logging` level from a name ("warning") or a number ("30")."""
    name = text.strip().upper()
    if name in _LEVELS:
        return _LEVELS[name]
    if name.isdigit():
        return int(name)
    raise BadOptionValue(
        f"Unknown log level {text!r}; choose from: DEBUG, INFO, WARNING, ERROR, CRITICAL "
        "(or a number such as 30)."
    )
