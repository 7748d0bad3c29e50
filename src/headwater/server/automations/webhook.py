"""`call-webhook`: one HTTP request to a checked address, without following redirects.

The URL is checked by `ssrf.check_url` (http/https, every resolved address
public or allowed), then the request goes to the checked address itself:
the URL's host is replaced by the address, the `Host` header and the TLS
server name (SNI, also used to verify the certificate) stay the URL's host.
So no second DNS lookup happens between the check and the connection (no
DNS rebinding). Proxies from the environment are not used (they would
connect elsewhere). Each request carries `Headwater-Action-Id`, the same on
every retry, so a receiver can drop repeats.
"""

from __future__ import annotations

from typing import Any

from headwater.server.automations import ssrf
from headwater.server.automations.failures import (
    PermanentActionError,
    TransientActionError,
    describe_url,
)

#: Bytes of the response body kept in the action's result.
BODY_BYTES = 1024
#: Status codes after which a retry may succeed.
_RETRY_STATUSES = frozenset({408, 425, 429})


def _read_some(response: Any, limit: int) -> str:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit].decode("utf-8", errors="replace")


def call(
    url: str,
    *,
    method: str,
    headers: dict[str, str],
    body: str,
    timeout: float,
    allowed: ssrf.AllowList,
    action_id: str,
) -> dict[str, Any]:
    """Send the request; the result to record (`status_code`, `body`, `url`).

    Raises:
        PermanentActionError: a refused URL, a redirect, or a 4xx answer.
        TransientActionError: the host does not resolve, no connection, a
            timeout, or a 5xx (or 408/425/429) answer.
    """
    import httpx

    shown = describe_url(url)
    try:
        target = ssrf.check_url(url, allowed)
    except ssrf.RefusedAddress as exc:
        raise PermanentActionError(f"call-webhook refused: {exc}") from None
    except ssrf.ResolutionError as exc:
        raise TransientActionError(f"call-webhook to {shown}: {exc}") from None
    request_headers = {"User-Agent": "headwater-automations", "Headwater-Action-Id": action_id}
    if body.lstrip().startswith(("{", "[")) and not any(
        key.lower() == "content-type" for key in headers
    ):
        request_headers["Content-Type"] = "application/json"
    request_headers.update(headers)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header = f"{host_header}:{target.port}"
    request_headers["Host"] = host_header
    original = httpx.URL(url)
    last_error: Exception | None = None
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout) as client:
        for address in target.addresses:
            extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
            request = client.build_request(
                method,
                original.copy_with(host=str(address)),
                headers=request_headers,
                content=body.encode() if method != "GET" else None,
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last_error = exc  # try the host's next address
                continue
            except httpx.TimeoutException:
                raise TransientActionError(
                    f"call-webhook to {shown} timed out after {timeout:g} s."
                ) from None
            except httpx.TransportError as exc:
                raise TransientActionError(
                    f"call-webhook to {shown} failed: {type(exc).__name__}: {exc}"
                ) from None
            try:
                text = _read_some(response, BODY_BYTES)
            except httpx.HTTPError:
                text = ""
            finally:
                response.close()
            return _outcome(shown, response.status_code, response.headers, text)
    raise TransientActionError(
        f"call-webhook could not connect to {shown}: {last_error or 'no address'}."
    )


def _outcome(shown: str, status: int, headers: Any, text: str) -> dict[str, Any]:
    result = {"status_code": status, "body": text, "url": shown}
    if 200 <= status < 300:
        return result
    excerpt = text[:200].strip()
    detail = f": {excerpt}" if excerpt else ""
    if 300 <= status < 400:
        raise PermanentActionError(
            f"call-webhook to {shown} answered {status}, a redirect (to "
            f"{describe_url(headers.get('location', '') or '?')}); redirects are not followed: "
            "use the final URL.",
            result=result,
        )
    if status >= 500 or status in _RETRY_STATUSES:
        raise TransientActionError(
            f"call-webhook to {shown} answered {status}{detail}", result=result
        )
    raise PermanentActionError(f"call-webhook to {shown} answered {status}{detail}", result=result)
