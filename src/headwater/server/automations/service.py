"""The automations service (being written): evaluates triggers over the event inbox and
runs the actions of firings. `nudge()` wakes it at once after events were written."""

from __future__ import annotations

import threading

_nudged = threading.Event()


def nudge() -> None:
    """Wake this process's automations service: events were just written."""
    _nudged.set()
