"""How the SDK reaches its runs' destination: the local store, or a Headwater server.

`open_backend(settings)` picks the backend the recorder writes through;
`HttpBackend` speaks to a server (`HEADWATER_API_URL`), batching records into
few requests and spooling them locally while the server is unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from headwater.client._backend import (
    Backend,
    TracksDelivery,
    check_delivered,
    open_backend,
    spool_directory,
)
from headwater.client._errors import RecordsNotDelivered

if TYPE_CHECKING:
    from headwater.client._flush import SpoolFlush, flush_spool
    from headwater.client._http import HttpBackend

__all__ = [
    "Backend",
    "HttpBackend",
    "RecordsNotDelivered",
    "SpoolFlush",
    "TracksDelivery",
    "check_delivered",
    "flush_spool",
    "open_backend",
    "spool_directory",
]


def __getattr__(name: str) -> Any:
    # HttpBackend brings orjson, gzip and its transport (~25 ms of imports):
    # loaded on first use so that embedded mode never pays for them.
    if name == "HttpBackend":
        from headwater.client._http import HttpBackend

        return HttpBackend
    if name in ("SpoolFlush", "flush_spool"):
        from headwater.client import _flush

        return getattr(_flush, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
