"""The API served from inside another process: `serve()` with no server configured.

A uvicorn server in a daemon thread on a free loopback port, on the
embedded store, with the background services (scheduler, late runs, ...).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from headwater.exceptions import ConfigurationError
from headwater.settings import Settings

#: Seconds between two rounds of the services of a local server.
LOCAL_SERVICES_INTERVAL = 5.0


class LocalServer:
    """The API app for `settings`' store, served on 127.0.0.1 in this process.

    Example:
        >>> server = LocalServer(get_settings())
        >>> api_url = server.start()  # http://127.0.0.1:<port>/api
        >>> server.stop()
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; returns the API URL once the server answers."""
        import uvicorn

        from headwater.server.app import create_app

        app = create_app(self.settings, services=True, services_interval=LOCAL_SERVICES_INTERVAL)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="headwater-local-api",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError(
                    f"Could not start the local API on the store of {self.settings.home}; "
                    "see the log above, or run `headwater server start` and set "
                    "HEADWATER_API_URL."
                )
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}/api"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
