"""Crash detection: runs left active by a process that no longer exists become Crashed.

Each flow run records the process executing it as "host:pid:start-ticks". On
start, any Headwater process checks the active runs of its own host: a pid
that is gone, or that now belongs to a different process (start time
differs), means the run's process died without recording a final state.
Runs on other hosts are left to the server's heartbeat-based detection.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from headwater.store.writer import Writer

logger = logging.getLogger(__name__)

CRASH_MESSAGE = "The process executing this run exited without reporting a final state."


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None if _proc_available() else _exists_without_proc(pid)
    # The command name (field 2) may contain spaces; fields resume after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[19].decode()


def _proc_available() -> bool:
    return os.path.isdir("/proc/self")


def _exists_without_proc(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return "?"
    return "?"


_HOST = socket.gethostname()
_tag: tuple[int, str] | None = None


def host() -> str:
    return _HOST


def current_process_tag() -> str:
    """This process's "host:pid:start" tag (recomputed after a fork)."""
    global _tag
    pid = os.getpid()
    if _tag is None or _tag[0] != pid:
        _tag = (pid, f"{_HOST}:{pid}:{_start_ticks(pid) or '?'}")
    return _tag[1]


def is_alive(tag: str) -> bool:
    """Whether the process named by a tag of this host still runs."""
    try:
        _host, pid_text, start = tag.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return True  # not ours to judge
    ticks = _start_ticks(pid)
    if ticks is None:
        return False
    return start == "?" or ticks == "?" or ticks == start


def detect_crashed_runs(writer: Writer) -> int:
    """Mark this host's active runs whose process is gone as Crashed; return how many."""
    own = current_process_tag()
    dead = [run_id for run_id, tag in writer.active_runs(_HOST) if tag != own and not is_alive(tag)]
    if dead:
        writer.mark_crashed(dead, CRASH_MESSAGE, time.time())
        logger.warning("Marked %d flow run(s) Crashed: their process is gone.", len(dead))
    return len(dead)
