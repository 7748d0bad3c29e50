"""Which events the enabled automations could count: only those go to the event inbox.

Every event is stored, but the automations service only needs to see events
whose name some enabled trigger expects (or waits `after`). With no
automations, or automations on flow-run failures only, the thousands of
task-run events of a busy server skip the inbox, and the service reads none of
them. Writers call `interest()` once per batch inside their transaction; the
triggers are parsed again only when the enabled automations change (their
count or latest `updated`).

An automation only counts events that occurred after it was created or last
changed, so an event written before it existed needs no inbox entry. The one
gap: an event written by a transaction that began before a new automation
committed, and that occurred after it, is not counted (a window of one
transaction).

This module is stdlib-only: the embedded SDK's write path imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

#: The enabled automations' count and latest change: when it changes, triggers are read again.
FINGERPRINT_SQL = "SELECT count(*), max(updated) FROM automation WHERE enabled"
TRIGGERS_SQL = 'SELECT "trigger" FROM automation WHERE enabled'


class Interest:
    """The event names some enabled trigger listens to."""

    __slots__ = ("everything", "exact", "prefixes")

    def __init__(
        self, *, everything: bool = False, exact: Iterable[str] = (), prefixes: Iterable[str] = ()
    ) -> None:
        self.everything = everything
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def wants(self, name: str) -> bool:
        """Whether an event named `name` may count for some trigger."""
        return (
            self.everything
            or name in self.exact
            or any(name.startswith(prefix) for prefix in self.prefixes)
        )

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.exact or self.prefixes)


NOTHING = Interest()
EVERYTHING = Interest(everything=True)


def from_triggers(triggers: Iterable[Any]) -> Interest:
    """The interest of these triggers (dicts, or their JSON text)."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for trigger in triggers:
        value = json.loads(trigger) if isinstance(trigger, str | bytes) else trigger
        if _collect(value, exact, prefixes):
            return EVERYTHING
    return Interest(exact=exact, prefixes=sorted(prefixes))


def _collect(trigger: Any, exact: set[str], prefixes: set[str]) -> bool:
    """Add the trigger's event names; True if it may count any event."""
    if not isinstance(trigger, dict):
        return True  # unreadable: be safe
    kind = trigger.get("type", "event")
    if kind in ("compound", "sequence"):
        return any(_collect(child, exact, prefixes) for child in trigger.get("triggers") or [])
    if kind == "metric":
        return False  # metrics read the runs themselves
    expect = list(trigger.get("expect") or [])
    if not expect:
        return True  # no `expect`: every event counts
    for pattern in [*expect, *(trigger.get("after") or [])]:
        if not isinstance(pattern, str) or pattern.startswith("!") or pattern == "*":
            return True
        if pattern.endswith("*"):
            prefixes.add(pattern[:-1])
        else:
            exact.add(pattern)
    return False


_cache: dict[tuple[Any, ...], Interest] = {}


def interest(fingerprint: tuple[Any, ...], load_triggers: Callable[[], Iterable[Any]]) -> Interest:
    """The interest for the automations `fingerprint` describes (cached by it)."""
    if not fingerprint or not fingerprint[0]:
        return NOTHING
    found = _cache.get(fingerprint)
    if found is None:
        found = from_triggers(load_triggers())
        if len(_cache) > 32:
            _cache.clear()
        _cache[fingerprint] = found
    return found
