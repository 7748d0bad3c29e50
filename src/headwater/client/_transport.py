"""One `POST /records` with retries: how every answer of the server is classified.

- 2xx: delivered.
- 429, 5xx, 408, 425, connection errors and timeouts: transient. Retried with
  exponential backoff and full jitter (a random wait between 0 and
  min(cap, base * 2**attempt)), or after the server's `Retry-After`, until a
  deadline; then the caller spools the body.
- 401, 403, 404, 405: the server is there but does not take records from us
  (wrong API key, wrong URL). Nothing about the batch is wrong, so it is not
  rejected: it is treated as unavailable (spooled) and the reason is reported.
- 413: the request is too large; the caller sends smaller requests.
- Any other 4xx: the batch is invalid; the caller keeps it in `rejected/`.

httpx is imported when the first client is made, never by `import headwater`.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

#: Backoff between attempts: base * 2**attempt, capped, fully jittered.
BACKOFF_BASE = 0.1
BACKOFF_CAP = 2.0
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_REFUSED_STATUS = frozenset({401, 403, 404, 405})


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    UNAVAILABLE = "unavailable"
    TOO_LARGE = "too large"
    REJECTED = "rejected"


@dataclasses.dataclass(frozen=True)
class Answer:
    """What became of one body: the verdict, and for failures a reason a user can act on."""

    verdict: Verdict
    reason: str = ""
    #: seconds the server asked us to wait (Retry-After), if it did
    retry_after: float | None = None


DELIVERED = Answer(Verdict.DELIVERED)


class Sender:
    """Posts bodies to `{api_url}/records` over one keep-alive connection pool."""

    def __init__(
        self,
        api_url: str,
        *,
        api_key: str | None = None,
        compress_min_bytes: int | None = 65536,
        request_timeout: float = 30.0,
        connect_timeout: float = 3.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = api_url.rstrip("/") + "/records"
        self._api_key = api_key
        self._compress_min_bytes = compress_min_bytes
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        self._client: httpx.Client | None = None

    def open(self) -> None:
        if self._client is not None:
            return
        import httpx

        from headwater._version import __version__

        headers = {"Content-Type": "application/json", "User-Agent": f"headwater/{__version__}"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        from headwater.client.api import tls_options

        self._client = httpx.Client(
            headers=headers,
            **tls_options(self.url),
            timeout=httpx.Timeout(self._request_timeout, connect=self._connect_timeout),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def send(self, body: bytes, deadline: float) -> Answer:
        """Post `body`, retrying transient failures until `deadline` (a `clock()` value).

        Example: `sender.send(body, sender.clock() + 10)` tries for about ten seconds.
        """
        attempt = 0
        while True:
            answer = self.post(body)
            if answer.verdict is not Verdict.UNAVAILABLE:
                return answer
            wait = self.backoff(attempt, answer.retry_after)
            if self._clock() + wait > deadline:
                return answer
            self._sleep(wait)
            attempt += 1

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry `attempt` (0-based): full jitter, or Retry-After."""
        # The exponent is capped: a delivery thread may retry for hours.
        jitter = self._random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 32)))
        return jitter if retry_after is None else max(retry_after, jitter)

    def clock(self) -> float:
        return self._clock()

    def post(self, body: bytes) -> Answer:
        """One attempt, classified (see the module docstring)."""
        import httpx

        self.open()
        assert self._client is not None
        headers: dict[str, str] = {}
        if self._compress_min_bytes is not None and len(body) > self._compress_min_bytes:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            return Answer(Verdict.UNAVAILABLE, f"{type(exc).__name__}: {exc or 'no detail'}")
        status = response.status_code
        if 200 <= status < 300:
            return DELIVERED
        detail = f"HTTP {status} {response.reason_phrase}: {_excerpt(response.text)}"
        if status in _TRANSIENT_STATUS or status >= 500:
            return Answer(Verdict.UNAVAILABLE, detail, _retry_after(response.headers))
        if status in _REFUSED_STATUS:
            hint = (
                "check HEADWATER_API_KEY"
                if status in (401, 403)
                else "check that HEADWATER_API_URL ends with the API prefix, e.g. /api"
            )
            return Answer(Verdict.UNAVAILABLE, f"{detail} ({hint})")
        if status == 413:
            return Answer(Verdict.TOO_LARGE, detail)
        return Answer(Verdict.REJECTED, detail)


def _excerpt(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if present."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
