"""RFC 2136 publishing with TSIG, against a real BIND 9 server."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.dns.bind import BindServer
from volact.core.srv import SRVRecord
from volact.net.dns import DNSPublishError, DNSServer, TSIGKey, publish_srv, query_srv, withdraw_srv

pytestmark = pytest.mark.dns

NAME = "_volact._tcp.volact.test"
WRONG_SECRET = "c2VjcmV0IHRoYXQgdGhlIHNlcnZlciBkb2VzIG5vdCBrbm93IQ=="


def publish(
    bind: BindServer,
    port: int,
    domain: str = "volact.test",
    *,
    priority: int = 0,
    weight: int = 0,
    service: str = "_volact._tcp",
    key: TSIGKey | None = None,
) -> None:
    publish_srv(
        domain,
        service=service,
        target="localhost",
        port=port,
        priority=priority,
        weight=weight,
        server=bind.server,
        key=key or bind.key,
        timeout=5,
    )


def records(bind: BindServer, name: str = NAME) -> list[SRVRecord]:
    result = query_srv(name, server=bind.server, timeout=2)
    assert result.outcome in ("answer", "nxdomain"), result
    return list(result.records)


def test_two_hosts_publish_into_one_zone(bind: BindServer) -> None:
    publish(bind, 17001)
    publish(bind, 17002, weight=3)
    assert records(bind) == [
        SRVRecord(0, 0, 17001, "localhost"),
        SRVRecord(0, 3, 17002, "localhost"),
    ]


def test_dig_sees_both_records(bind: BindServer) -> None:
    publish(bind, 17001, priority=10, weight=1)
    publish(bind, 17002, priority=10, weight=3)
    command = ["dig", "@127.0.0.1", "-p", str(bind.port), "SRV", NAME, "+short", "+tries=3"]
    lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    assert sorted(lines.splitlines()) == ["10 1 17001 localhost.", "10 3 17002 localhost."]


def test_republishing_does_not_duplicate(bind: BindServer) -> None:
    for _ in range(3):
        publish(bind, 17001)
    assert records(bind) == [SRVRecord(0, 0, 17001, "localhost")]


def test_republishing_with_new_priority_replaces_only_our_own_record(bind: BindServer) -> None:
    publish(bind, 17001, priority=0, weight=0)
    publish(bind, 17002, priority=0, weight=0)  # Another host (same target, other port).
    publish(bind, 17001, priority=5, weight=2)
    assert records(bind) == [
        SRVRecord(0, 0, 17002, "localhost"),
        SRVRecord(5, 2, 17001, "localhost"),
    ]


def test_publish_to_two_domains(bind: BindServer) -> None:
    publish(bind, 17001, domain="volact.test")
    publish(bind, 17001, domain="other.test")
    assert records(bind) == [SRVRecord(0, 0, 17001, "localhost")]
    assert records(bind, "_volact._tcp.other.test") == [SRVRecord(0, 0, 17001, "localhost")]


def test_withdraw_removes_only_our_own_record(bind: BindServer) -> None:
    publish(bind, 17001)
    publish(bind, 17002)
    withdraw_srv("volact.test", target="localhost", port=17001, server=bind.server, key=bind.key)
    assert records(bind) == [SRVRecord(0, 0, 17002, "localhost")]
    # Withdrawing what is not there is fine.
    withdraw_srv("volact.test", target="localhost", port=17001, server=bind.server, key=bind.key)


def test_wrong_secret_is_badsig(bind: BindServer) -> None:
    wrong = TSIGKey(bind.key.name, bind.key.algorithm, WRONG_SECRET)
    with pytest.raises(DNSPublishError) as raised:
        publish(bind, 17001, key=wrong)
    assert raised.value.reason == "badsig"
    assert "secret differs" in str(raised.value)
    assert WRONG_SECRET not in str(raised.value) and bind.key.secret not in str(raised.value)
    assert records(bind) == []


def test_unknown_key_name_is_badkey(bind: BindServer) -> None:
    unknown = TSIGKey("not-on-the-server", bind.key.algorithm, bind.key.secret)
    with pytest.raises(DNSPublishError) as raised:
        publish(bind, 17001, key=unknown)
    assert raised.value.reason == "badkey"
    assert "does not know TSIG key 'not-on-the-server'" in str(raised.value)


def test_name_outside_the_update_policy_is_refused(bind: BindServer) -> None:
    # update-policy grants the key _volact._tcp.volact.test only, not another service name.
    with pytest.raises(DNSPublishError) as raised:
        publish(bind, 17001, service="_other._tcp")
    assert raised.value.reason == "refused"
    assert "update-policy" in str(raised.value)


def test_zone_without_updates_is_refused(bind: BindServer) -> None:
    with pytest.raises(DNSPublishError) as raised:
        publish(bind, 17001, domain="static.test")
    assert raised.value.reason == "refused"


def test_zone_the_server_does_not_serve_is_notauth(bind: BindServer) -> None:
    with pytest.raises(DNSPublishError) as raised:
        publish(bind, 17001, domain="corp.example")
    assert raised.value.reason == "notauth"
    assert "not authoritative for zone corp.example" in str(raised.value)


def test_unreachable_server(bind: BindServer) -> None:
    closed = DNSServer("127.0.0.1", _closed_port())
    with pytest.raises(DNSPublishError) as raised:
        publish_srv("volact.test", target="x", port=1, server=closed, key=bind.key, timeout=2)
    assert raised.value.reason == "unreachable"
    assert str(closed) in str(raised.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
