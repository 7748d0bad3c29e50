"""The address guard of call-webhook and generic notifications: what it refuses, what the
allow-list lets through, and that a request goes to the address that was checked."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from headwater.server.automations import ssrf, webhook
from headwater.server.automations.failures import PermanentActionError

from .test_automation_actions import Receiver

NOTHING = ssrf.AllowList()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8080/x", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd00:ec2::254]/", "private"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://100.64.0.1/", "not publicly routable"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 form of 169.254.169.254
        ("http://240.0.0.1/", "reserved"),
    ],
)
def test_non_public_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ssrf.RefusedAddress) as refused:
        ssrf.check_url(url, NOTHING)
    assert reason in str(refused.value)
    assert "HEADWATER_SERVER_AUTOMATIONS_ALLOWED_HOSTS" in str(refused.value)


def test_a_name_resolving_to_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(ssrf.RefusedAddress, match=r"localhost \(.*\), a loopback address"):
        ssrf.check_url("http://localhost:8080/", NOTHING)
    allowed = ssrf.check_url("http://localhost:8080/", ssrf.AllowList.parse("localhost"))
    assert all(address.is_loopback for address in allowed.addresses)


def test_metadata_names_and_other_schemes_are_refused() -> None:
    with pytest.raises(ssrf.RefusedAddress, match="cloud metadata"):
        ssrf.check_url("http://metadata.google.internal/computeMetadata/v1/", NOTHING)
    with pytest.raises(ssrf.RefusedAddress, match="only http and https"):
        ssrf.check_url("gopher://example.com/", NOTHING)
    with pytest.raises(ssrf.RefusedAddress, match="no host"):
        ssrf.check_url("http:///path", NOTHING)


def test_the_allow_list_takes_hosts_addresses_and_networks() -> None:
    allowed = ssrf.AllowList.parse(" localhost , 127.0.0.1, 10.0.0.0/8,[::1] ")
    assert ssrf.check_url("http://127.0.0.1:1/", allowed).addresses == (
        ipaddress.ip_address("127.0.0.1"),
    )
    assert ssrf.check_url("http://10.20.30.40/", allowed).port == 80
    assert ssrf.check_url("https://[::1]/", allowed).port == 443
    with pytest.raises(ssrf.RefusedAddress):
        ssrf.check_url("http://192.168.1.1/", allowed)
    with pytest.raises(ValueError, match="not a host name, address or network"):
        ssrf.AllowList.parse("10.0.0.0/99")


def test_a_public_address_passes() -> None:
    target = ssrf.check_url("https://93.184.215.14/hook", NOTHING)
    assert target.addresses == (ipaddress.ip_address("93.184.215.14"),)


def test_the_request_goes_to_the_checked_address_with_the_original_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the guard's resolution is used: `hooks.invalid` cannot resolve, so if the
    client looked the name up again the request would fail; it reaches the address
    the guard checked, with the name in the Host header."""
    receiver = Receiver()
    try:
        monkeypatch.setattr(
            ssrf, "resolve", lambda host, port: (ipaddress.ip_address("127.0.0.1"),)
        )
        allowed = ssrf.AllowList.parse("127.0.0.1")
        result = webhook.call(
            f"http://hooks.invalid:{receiver.port}/in",
            method="POST",
            headers={},
            body="hello",
            timeout=5,
            allowed=allowed,
            action_id="a1",
        )
        assert result["status_code"] == 200
        (request,) = receiver.requests
        assert request["headers"]["Host"] == f"hooks.invalid:{receiver.port}"
        assert request["body"] == "hello"

        # The same name resolving to loopback, not allowed: refused before any connection.
        with pytest.raises(PermanentActionError, match="loopback"):
            webhook.call(
                f"http://hooks.invalid:{receiver.port}/in",
                method="POST",
                headers={},
                body="again",
                timeout=5,
                allowed=NOTHING,
                action_id="a2",
            )
        assert len(receiver.requests) == 1
    finally:
        receiver.close()


def test_rebinding_after_the_check_does_not_change_where_the_request_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name that resolves to an allowed address at check time and to another one later:
    the connection uses the first answer (there is no later lookup)."""
    receiver = Receiver()
    answers: list[Any] = [(ipaddress.ip_address("127.0.0.1"),)]
    lookups: list[str] = []

    def resolve(host: str, port: int) -> Any:
        lookups.append(host)
        return answers.pop(0)

    try:
        monkeypatch.setattr(ssrf, "resolve", resolve)
        webhook.call(
            f"http://rebind.invalid:{receiver.port}/",
            method="POST",
            headers={},
            body="{}",
            timeout=5,
            allowed=ssrf.AllowList.parse("127.0.0.1"),
            action_id="a3",
        )
        assert lookups == ["rebind.invalid"]
        assert len(receiver.requests) == 1
    finally:
        receiver.close()
