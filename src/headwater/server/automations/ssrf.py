"""Server-side request forgery guard for the requests automations make.

An automation's author chooses the URL a `call-webhook` action (or a generic
`json://`/`xml://`/`form://`/`mailto://` notification) reaches, but the
request leaves from the server, which may see addresses the author cannot:
its own loopback, the cloud metadata service (169.254.169.254,
fd00:ec2::254), the private network. So before a request:

1. the URL must be http or https, with a host;
2. the host is resolved once (`socket.getaddrinfo`), and every address must
   be public: loopback, link-local, private, unique-local, shared (CGNAT),
   multicast, reserved and unspecified addresses are refused, as are
   IPv4-mapped or NAT64 forms of them;
3. unless the host name, or the address, is in the allow-list
   `HEADWATER_SERVER_AUTOMATIONS_ALLOWED_HOSTS` (comma separated host names,
   addresses or networks: `localhost,127.0.0.1,10.0.0.0/8`).

`call-webhook` then connects to the address that was checked (`pinned_request`),
not to whatever a second DNS lookup returns: a name that resolves to a public
address at check time and to 127.0.0.1 a moment later (DNS rebinding) cannot
reach loopback. The request keeps the original `Host` header and TLS server
name, so virtual hosts and certificate checks work as usual.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import urllib.parse
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Host names that always mean cloud metadata services (whatever they resolve to).
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class RefusedAddress(ValueError):
    """A URL the guard refuses; permanent: retrying cannot help."""


class ResolutionError(OSError):
    """The host name could not be resolved (perhaps for now: DNS may be down)."""


@dataclasses.dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts and networks requests may reach although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        """From the setting's text: `localhost, 127.0.0.1, 10.0.0.0/8, [::1]`.

        Raises:
            ValueError: an entry is neither a host name nor an address or network.
        """
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in (text or "").split(","):
            entry = raw.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or " " in entry:
                raise ValueError(
                    f"HEADWATER_SERVER_AUTOMATIONS_ALLOWED_HOSTS entry {raw.strip()!r} is not a "
                    "host name, address or network (e.g. localhost, 127.0.0.1, 10.0.0.0/8)"
                )
            hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".").strip("[]") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: its parts, and the addresses it may be reached at (checked)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def why_refused(address: IPAddress) -> str | None:
    """Why a request must not reach `address` ("loopback", ...), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return why_refused(mapped)
        if address in _NAT64:
            return why_refused(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata services live here)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for reason, applies in checks:
        if applies:
            return reason
    if not address.is_global:
        return "not publicly routable"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """The addresses `host` resolves to (an address literal resolves to itself).

    Raises:
        ResolutionError: the name does not resolve.
    """
    try:
        return (ipaddress.ip_address(host.strip("[]")),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ResolutionError(f"cannot resolve host {host!r}: {exc}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ResolutionError(f"cannot resolve host {host!r}: no addresses")
    return tuple(addresses)


def check_host(
    host: str, port: int, allowed: AllowList, *, what: str = "URL"
) -> tuple[IPAddress, ...]:
    """The addresses of `host`, all checked; `RefusedAddress` if one is not allowed."""
    if not host:
        raise RefusedAddress(f"The {what} has no host.")
    if allowed.allows_host(host):
        return resolve(host, port)
    if host.lower().rstrip(".") in _METADATA_NAMES:
        raise RefusedAddress(
            f"The {what} names {host!r}, a cloud metadata service; requests there are refused."
        )
    addresses = resolve(host, port)
    for address in addresses:
        if allowed.allows_address(address):
            continue
        reason = why_refused(address)
        if reason is not None:
            shown = host if host.strip("[]") == str(address) else f"{host} ({address})"
            raise RefusedAddress(
                f"The {what} points to {shown}, a {reason} address; automations may not "
                "reach it. To allow it, add the host or address to "
                "HEADWATER_SERVER_AUTOMATIONS_ALLOWED_HOSTS."
            )
    return addresses


def check_url(
    url: str, allowed: AllowList, *, schemes: Sequence[str] = ("http", "https")
) -> Target:
    """Parse and check `url`: scheme, host, and every address the host resolves to.

    Raises:
        RefusedAddress: the URL is malformed, not http(s), or reaches a refused address.
        ResolutionError: the host does not resolve (may be transient).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedAddress(f"The URL is not valid: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise RefusedAddress(
            f"The URL's scheme is {scheme or 'missing'!r}; only {' and '.join(schemes)} "
            "URLs are allowed (e.g. https://example.com/hook)."
        )
    host = parts.hostname or ""
    if port is None:
        port = 443 if scheme == "https" else 80
    addresses = check_host(host, port, allowed)
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
