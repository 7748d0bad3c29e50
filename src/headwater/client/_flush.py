"""`headwater spool flush`: deliver a server's spool now, from any process."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from headwater.client._backend import http_backend
from headwater.exceptions import ConfigurationError
from headwater.settings import Settings


@dataclasses.dataclass(frozen=True)
class SpoolFlush:
    """What `flush_spool` did."""

    api_url: str
    spool_directory: Path
    delivered: int
    remaining: int


def flush_spool(settings: Settings, *, timeout: float = 30.0) -> SpoolFlush:
    """Deliver the spool of `settings.api_url` now, retrying for up to `timeout` seconds.

    This is `headwater spool flush`. Files the server rejects move to
    `rejected/` and count as delivered (they will not be sent again).

    Example:
        result = flush_spool(get_settings())
        print(f"{result.delivered} delivered, {result.remaining} left")
    """
    if not settings.api_url:
        raise ConfigurationError(
            "There is no server to deliver spooled records to: set HEADWATER_API_URL "
            "(for example http://127.0.0.1:4200/api)."
        )
    backend = http_backend(settings)
    try:
        delivered, remaining = backend.drain(time.monotonic() + timeout)
    finally:
        backend.close()
    return SpoolFlush(settings.api_url, backend.spool.directory, delivered, remaining)
