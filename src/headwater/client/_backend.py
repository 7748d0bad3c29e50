"""The `Backend` the recorder writes through, and the factory that picks one from settings.

Embedded mode (no `HEADWATER_API_URL`): a store writer, straight into SQLite
or PostgreSQL. Remote mode: an `HttpBackend` that posts batches to the server.
Embedded mode must not pay for remote mode: this module imports nothing
beyond what `import headwater` has loaded, until a remote backend is asked for.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from headwater.exceptions import ConfigurationError
from headwater.store.writer import Writer

if TYPE_CHECKING:
    from headwater.client._errors import RecordsNotDelivered
    from headwater.client._http import HttpBackend
    from headwater.settings import Settings


class Backend(Writer, Protocol):
    """What the recorder writes batches through: a store writer, or a server over HTTP.

    The methods are those of `headwater.store.writer.Writer`; a backend that
    can fail to deliver a run's final state also implements `TracksDelivery`.
    """


@runtime_checkable
class TracksDelivery(Protocol):
    def undelivered(self, flow_run_id: str) -> RecordsNotDelivered | None:
        """The error to raise if `flow_run_id`'s final state is not yet at its destination."""


def open_backend(settings: Settings) -> Backend:
    """An `HttpBackend` when `settings.api_url` is set, else the store writer for the database."""
    if settings.api_url:
        return http_backend(settings)
    from headwater.store.writer import open_writer

    return open_writer(settings.effective_database_url)


def http_backend(settings: Settings) -> HttpBackend:
    """The `HttpBackend` for `settings.api_url`, spooling under `$HEADWATER_HOME/spool/`."""
    from headwater.client._http import HttpBackend

    api_url = settings.api_url or ""
    host = _check_api_url(api_url)
    return HttpBackend(
        api_url,
        spool_directory=spool_directory(settings.home, api_url),
        api_key=_api_key(settings),
        # Compressing costs ~4.5 us per task run on this machine's loopback,
        # where it saves nothing; across a network it sends ~8x fewer bytes.
        compress_min_bytes=None if _is_loopback(host) else 65536,
    )


def check_delivered(backend: Writer, flow_run_id: uuid.UUID | str) -> None:
    """Raise `RecordsNotDelivered` if `flow_run_id`'s final state reached only the spool.

    Call after the recorder's `commit()` completed. Embedded stores always
    have everything by then, so for them this does nothing.
    """
    if isinstance(backend, TracksDelivery):
        if isinstance(flow_run_id, uuid.UUID) or len(flow_run_id) != 32:
            flow_run_id = uuid.UUID(str(flow_run_id)).hex
        error = backend.undelivered(flow_run_id)
        if error is not None:
            raise error


def spool_directory(home: Path, api_url: str) -> Path:
    """`$HEADWATER_HOME/spool/<server>`: one spool per server, so records go where they belong."""
    import hashlib
    import re
    import urllib.parse

    parts = urllib.parse.urlsplit(api_url)
    readable = re.sub(r"[^A-Za-z0-9.]+", "-", f"{parts.netloc}{parts.path}").strip("-")
    digest = hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()[:8]
    return home / "spool" / f"{readable[:60]}-{digest}"


def _api_key(settings: Settings) -> str | None:
    return settings.api_key or None


def _check_api_url(api_url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"Invalid HEADWATER_API_URL {api_url!r}: expected the server's API address, "
            "for example http://127.0.0.1:4200/api."
        )
    return parts.hostname


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
