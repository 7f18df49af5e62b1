"""The rules of discovery, with the shipped ``StaticDNS`` fake (no network).

These tests are about the order of sources and the failover rules; that DNS itself works is
shown against a real BIND server in test_discovery_bind.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from volact.client.discovery import (
    Candidate,
    DiscoverySettings,
    StaticDNS,
    candidates,
    iter_candidates,
    try_candidates,
)
from volact.core.errors import (
    BadRequest,
    CountInsufficient,
    HostUnreachable,
    NoHostFound,
    ProductNotHosted,
)
from volact.core.srv import SRVRecord

NAME = "_volact._tcp.corp.example"


def fake(**kwargs: Any) -> StaticDNS:
    return StaticDNS(
        records={
            NAME: [SRVRecord(0, 0, 7688, "kms1.corp.example")],
            "_volact._tcp.lab.example": [SRVRecord(0, 0, 7688, "kms2.lab.example")],
        },
        **kwargs,
    )


def run(settings: DiscoverySettings, dns: StaticDNS) -> tuple[list[Candidate], Any]:
    return candidates(
        settings,
        query_srv=dns.query_srv,
        search_domains=dns.search_domains,
        fqdn_suffix=dns.fqdn_suffix,
        randint=random.Random(1).randint,
    )


def test_manual_host_turns_dns_off() -> None:
    dns = fake(search=["corp.example"])
    found, trace = run(
        DiscoverySettings(manual_host="kms9.corp.example", cached_host="kms1:7688"), dns
    )
    assert found == [Candidate("kms9.corp.example", 7688, "manual")]
    assert dns.asked == []
    assert "DNS discovery is off" in "\n".join(trace.lines())


def test_cached_host_first_then_dns_without_repeating_it() -> None:
    dns = fake(search=["corp.example"])
    settings = DiscoverySettings(cached_host="kms1.corp.example:7688")
    found, _ = run(settings, dns)
    assert found == [Candidate("kms1.corp.example", 7688, "cached")]  # DNS gave the same host.
    found, _ = run(DiscoverySettings(cached_host="old.corp.example:9000"), dns)
    assert [c.source for c in found] == ["cached", f"dns:{NAME}"]


def test_host_caching_off_ignores_the_cached_host() -> None:
    found, _ = run(
        DiscoverySettings(cached_host="old:9000", host_caching=False), fake(search=["corp.example"])
    )
    assert [c.source for c in found] == [f"dns:{NAME}"]


def test_domains_configured_else_search_list_else_fqdn_suffix() -> None:
    dns = fake(search=["lab.example"], suffix="corp.example")
    _, trace = run(DiscoverySettings(domains=["Corp.Example."]), dns)
    assert (trace.domains, trace.domains_source) == (["corp.example"], "set-domain")
    _, trace = run(DiscoverySettings(), dns)
    assert (trace.domains, trace.domains_source) == (["lab.example"], "resolver search list")
    _, trace = run(DiscoverySettings(), fake(suffix="corp.example"))
    assert (trace.domains, trace.domains_source) == (["corp.example"], "FQDN suffix")


def test_dns_is_asked_only_when_the_cached_host_failed() -> None:
    dns = fake(search=["corp.example"])
    found, trace = iter_candidates(
        DiscoverySettings(cached_host="kms2.lab.example"),
        query_srv=dns.query_srv,
        search_domains=dns.search_domains,
        fqdn_suffix=dns.fqdn_suffix,
    )
    assert try_candidates(found, lambda c: c.host, trace) == "kms2.lab.example"
    assert dns.asked == []
    assert trace.reached == Candidate("kms2.lab.example", 7688, "cached")


def unreachable_except(good: str) -> Any:
    def attempt(candidate: Candidate) -> str:
        if candidate.host != good:
            raise HostUnreachable(f"connection refused by {candidate.address}")
        return "ticket"

    return attempt


def test_a_failing_host_is_dropped_and_the_next_tried() -> None:
    dns = fake(search=["corp.example", "lab.example"])
    found, trace = iter_candidates(
        DiscoverySettings(cached_host="gone.corp.example"),
        query_srv=dns.query_srv,
        search_domains=dns.search_domains,
        fqdn_suffix=dns.fqdn_suffix,
    )
    assert try_candidates(found, unreachable_except("kms2.lab.example"), trace) == "ticket"
    assert [(a.candidate.host, a.result) for a in trace.attempts] == [
        ("gone.corp.example", "unreachable"),
        ("kms1.corp.example", "unreachable"),
        ("kms2.lab.example", "ok"),
    ]
    text = "\n".join(trace.lines())
    assert "tried kms1.corp.example:7688: unreachable (connection refused" in text


def test_an_answer_from_a_host_stops_the_search() -> None:
    _, trace = run(DiscoverySettings(manual_host="a"), StaticDNS())
    found = [Candidate("a", 1, "x"), Candidate("b", 2, "x")]

    def attempt(candidate: Candidate) -> None:
        raise CountInsufficient("2 of 5", {"count": 2, "threshold": 5})

    with pytest.raises(CountInsufficient):
        try_candidates(found, attempt, trace)
    assert [a.candidate.host for a in trace.attempts] == ["a"]
    assert trace.reached == found[0]


def test_a_host_that_cannot_serve_the_product_is_skipped() -> None:
    _, trace = run(DiscoverySettings(manual_host="a"), StaticDNS())
    found = [Candidate("a", 1, "x"), Candidate("b", 2, "x")]

    def attempt(candidate: Candidate) -> str:
        if candidate.host == "a":
            raise ProductNotHosted("not for this group")
        return "ticket"

    assert try_candidates(found, attempt, trace) == "ticket"
    _, trace = run(DiscoverySettings(manual_host="a"), StaticDNS())
    with pytest.raises(ProductNotHosted):
        try_candidates(found[:1], attempt, trace)


def test_all_unreachable_names_every_host_tried() -> None:
    dns = fake(search=["corp.example", "lab.example"])
    found, trace = run(DiscoverySettings(), dns)
    with pytest.raises(HostUnreachable) as raised:
        try_candidates(found, unreachable_except("none"), trace)
    assert "kms1.corp.example:7688" in raised.value.message
    assert "kms2.lab.example:7688" in raised.value.message
    assert raised.value.details["tried"] == ["kms1.corp.example:7688", "kms2.lab.example:7688"]


def test_no_candidates_is_no_host_found_naming_the_names_queried() -> None:
    dns = StaticDNS(search=["corp.example", "lab.example"], outcomes={NAME: "timeout"})
    found, trace = run(DiscoverySettings(), dns)
    with pytest.raises(NoHostFound) as raised:
        try_candidates(found, unreachable_except("none"), trace)
    assert NAME in raised.value.message
    assert "timed out" in raised.value.message
    assert raised.value.details["queried"] == [NAME, "_volact._tcp.lab.example"]


def test_no_domain_at_all_says_how_to_set_one() -> None:
    found, trace = run(DiscoverySettings(), StaticDNS())
    with pytest.raises(NoHostFound) as raised:
        try_candidates(found, unreachable_except("none"), trace)
    assert "`volact client set-domain DOMAIN`" in raised.value.text("cli")
    assert "`License.configure(domains=[DOMAIN])`" in str(raised.value)  # an SDK caller's step
    assert trace.domains_source == "none"


def test_service_name_from_the_descriptor() -> None:
    dns = StaticDNS(records={"_writer._tcp.corp.example": [SRVRecord(0, 0, 9000, "w1")]})
    found, _ = run(DiscoverySettings(domains=["corp.example"], srv_service="_writer._tcp"), dns)
    assert found == [Candidate("w1", 9000, "dns:_writer._tcp.corp.example")]


def test_bad_settings_are_bad_requests() -> None:
    with pytest.raises(BadRequest):
        run(DiscoverySettings(dns_server="ns1.corp.example"), StaticDNS())
    with pytest.raises(BadRequest):
        run(DiscoverySettings(manual_host="kms1:99999"), StaticDNS())
    with pytest.raises(BadRequest):
        run(DiscoverySettings(domains=["not a domain"]), StaticDNS())
    # A corrupt cached host is noted and skipped, not fatal.
    found, trace = run(DiscoverySettings(cached_host="kms1:0", domains=["corp.example"]), fake())
    assert [c.source for c in found] == [f"dns:{NAME}"]
    assert any("cached host" in note for note in trace.notes)


def test_trace_as_json_data() -> None:
    _, trace = run(DiscoverySettings(domains=["corp.example"]), fake())
    data = trace.to_dict()
    assert data["queries"][0]["records"][0] == {
        "priority": 0,
        "weight": 0,
        "port": 7688,
        "target": "kms1.corp.example",
    }
    assert data["candidates"][0]["source"] == f"dns:{NAME}"
