"""Client discovery against a real BIND 9 server: published hosts are found, ordered by
RFC 2782, failed over, and every query is in the trace."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dns.bind import BindServer
from volact.client.discovery import (
    Candidate,
    DiscoverySettings,
    candidates,
    iter_candidates,
    try_candidates,
)
from volact.core.errors import HostUnreachable, NoHostFound
from volact.net.dns import DNSServer, SRVQueryResult, publish_srv, query_srv, resolve_address

pytestmark = pytest.mark.dns


def no_system_lookup() -> Any:
    raise AssertionError("configured domains must be used without asking the system")


def settings_for(bind: BindServer, *domains: str, **kwargs: Any) -> DiscoverySettings:
    return DiscoverySettings(domains=list(domains), dns_server=str(bind.server), **kwargs)


def discover(
    settings: DiscoverySettings, seed: int = 0, timeout: float = 2.0
) -> tuple[list[Candidate], Any]:
    return candidates(
        settings,
        search_domains=no_system_lookup,
        fqdn_suffix=no_system_lookup,
        randint=random.Random(seed).randint,
        timeout=timeout,
    )


def publish(bind: BindServer, domain: str, target: str, port: int, priority: int = 0) -> None:
    publish_srv(
        domain,
        target=target,
        port=port,
        priority=priority,
        weight=1,
        server=bind.server,
        key=bind.key,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections (a stand-in for a running host)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_published_hosts_are_found_with_only_a_domain_and_a_dns_server(bind: BindServer) -> None:
    publish(bind, "volact.test", "localhost", 17001)
    publish(bind, "volact.test", "localhost", 17002)
    for seed in range(20):
        found, trace = discover(settings_for(bind, "volact.test"), seed)
        assert sorted(found) == [
            Candidate("localhost", 17001, "dns:_volact._tcp.volact.test"),
            Candidate("localhost", 17002, "dns:_volact._tcp.volact.test"),
        ]
    assert trace.queries[0].server == str(bind.server)
    assert trace.queries[0].outcome == "answer"
    # Equal priority and weight: both orders occur over the seeds (RFC 2782 spreads load).
    firsts = {discover(settings_for(bind, "volact.test"), seed)[0][0].port for seed in range(20)}
    assert firsts == {17001, 17002}


def test_lower_priority_always_comes_first(bind: BindServer) -> None:
    for seed in range(50):
        found, _ = discover(settings_for(bind, "static.test"), seed)
        assert [c.host for c in found][-1] == "backup.static.test"  # priority 20 after 10
        assert {c.host for c in found[:2]} == {"light.static.test", "heavy.static.test"}


def test_weights_spread_the_first_pick(bind: BindServer) -> None:
    # One real answer (weights 1 and 3 at priority 10), ordered 2000 times with a seeded source.
    answer = query_srv("_volact._tcp.static.test", server=bind.server, timeout=2)
    assert answer.outcome == "answer"

    def same_answer(name: str, *, server: DNSServer | None, timeout: float) -> SRVQueryResult:
        return answer

    rng = random.Random(2782)
    heavy_first = 0
    for _ in range(2000):
        found, _ = candidates(
            settings_for(bind, "static.test"), query_srv=same_answer, randint=rng.randint
        )
        heavy_first += found[0].host == "heavy.static.test"
    assert 0.65 < heavy_first / 2000 < 0.85  # weight 3 of 4: about three quarters


def test_a_failing_host_is_dropped_and_the_next_one_answers(
    bind: BindServer, listening: int
) -> None:
    # The targets have A records in static.test: they are resolved through the same server.
    down = closed_port()
    publish(bind, "other.test", "light.static.test", down, priority=0)
    publish(bind, "other.test", "heavy.static.test", listening, priority=10)
    settings = settings_for(bind, "other.test")

    def connect(candidate: Candidate) -> str:
        addresses = resolve_address(candidate.host, server=settings.server, timeout=2)
        for address in addresses:
            try:
                socket.create_connection((address, candidate.port), timeout=2).close()
            except OSError as error:
                raise HostUnreachable(f"{candidate.address}: {error.strerror}") from None
            return f"{address}:{candidate.port}"
        raise HostUnreachable(f"{candidate.address}: no address")

    found, trace = iter_candidates(settings, randint=random.Random(0).randint)
    assert try_candidates(found, connect, trace) == f"127.0.0.1:{listening}"
    assert [(a.candidate.port, a.result) for a in trace.attempts] == [
        (down, "unreachable"),
        (listening, "ok"),
    ]
    assert trace.reached == Candidate("heavy.static.test", listening, "dns:_volact._tcp.other.test")


def test_no_records_is_no_host_found_naming_the_names_queried(bind: BindServer) -> None:
    found, trace = discover(settings_for(bind, "nothing.static.test", "nosrv.static.test"))
    assert found == []
    assert [(q.name, q.outcome) for q in trace.queries] == [
        ("_volact._tcp.nothing.static.test", "nxdomain"),
        ("_volact._tcp.nosrv.static.test", "noanswer"),
    ]
    with pytest.raises(NoHostFound) as raised:
        try_candidates(found, lambda c: c, trace)
    assert "_volact._tcp.nothing.static.test (NXDOMAIN" in raised.value.message
    assert "_volact._tcp.nosrv.static.test (no SRV records" in raised.value.message
    text = "\n".join(trace.lines())
    assert "SRV _volact._tcp.nothing.static.test: NXDOMAIN" in text


def test_a_dns_server_that_does_not_answer_is_a_timeout_in_the_trace(bind: BindServer) -> None:
    silent = DNSServer("127.0.0.1", closed_port())
    settings = DiscoverySettings(domains=["volact.test"], dns_server=str(silent))
    found, trace = discover(settings, timeout=0.3)
    assert found == []
    assert [(q.name, q.outcome) for q in trace.queries] == [("_volact._tcp.volact.test", "timeout")]
    assert "timed out" in "\n".join(trace.lines())


def test_the_cached_host_is_tried_before_dns(bind: BindServer) -> None:
    publish(bind, "volact.test", "localhost", 17001)
    settings = settings_for(bind, "volact.test", cached_host="localhost:17009")
    found, _ = discover(settings)
    assert [(c.port, c.source) for c in found] == [
        (17009, "cached"),
        (17001, "dns:_volact._tcp.volact.test"),
    ]


def test_resolve_address_through_the_configured_server(bind: BindServer) -> None:
    assert resolve_address("light.static.test.", server=bind.server, timeout=2) == ["127.0.0.1"]
    with pytest.raises(HostUnreachable, match=r"nope\.static\.test.*NXDOMAIN"):
        resolve_address("nope.static.test", server=bind.server, timeout=2)


def test_a_refusing_server_is_an_error_in_the_trace(bind: BindServer) -> None:
    # The test server serves no zone corp.example and does not recurse: it answers REFUSED.
    found, trace = discover(settings_for(bind, "corp.example"))
    assert found == []
    assert trace.queries[0].outcome == "error: the server answered REFUSED"
