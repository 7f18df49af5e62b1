from __future__ import annotations

from dataclasses import replace

import pytest

from tests.factories import T0, Vendor, request
from volact import crypto
from volact.core import keys
from volact.core.durations import DAY, HOUR
from volact.core.host_machine import (
    OUTCOME_CODES,
    ClientRow,
    GroupView,
    HostContext,
    Outcome,
    decide,
    refused,
    route,
)
from volact.core.policy import GroupPolicy

GROUP = "office-2026"


@pytest.fixture
def context() -> HostContext:
    vendor = Vendor()
    cert = vendor.certificate(crypto.SigningKey.generate())
    return HostContext(vendor_id="acme", certificate=cert)


def test_route_finds_the_group_from_the_gvlk(context: HostContext) -> None:
    routed = route(request(), context, T0)
    assert routed.outcome is None and routed.group == GROUP


def test_uncertified_or_expired_host(context: HostContext) -> None:
    assert (
        route(request(), replace(context, certificate=None), T0).outcome
        is Outcome.HOST_NOT_ACTIVATED
    )
    assert context.certificate is not None
    late = route(
        request(client_time=context.certificate.not_after + 1),
        context,
        context.certificate.not_after + 1,
    )
    assert late.outcome is Outcome.HOST_NOT_ACTIVATED
    assert "outside its validity" in late.message


def test_invalid_keys(context: HostContext) -> None:
    assert route(request(key="garbage"), context, T0).outcome is Outcome.INVALID_KEY
    mak = keys.make_secret_key(keys.Channel.MAK, bytes(range(12))).text
    assert route(request(key=mak), context, T0).outcome is Outcome.INVALID_KEY
    # A GVLK of another product, or of another vendor's product, is an invalid key.
    other = keys.make_gvlk("acme", GROUP, "calc-2026").text
    assert route(request(key=other), context, T0).outcome is Outcome.INVALID_KEY
    foreign = keys.make_gvlk("globex", GROUP, "writer-2026").text
    assert route(request(key=foreign), context, T0).outcome is Outcome.INVALID_KEY


def test_product_of_an_uncertified_group(context: HostContext) -> None:
    req = request(product="game-2026", group="games")
    routed = route(req, context, T0)
    assert routed.outcome is Outcome.PRODUCT_NOT_HOSTED
    assert "not certified" in routed.message


def test_time_skew(context: HostContext) -> None:
    assert route(request(client_time=T0 + 4 * HOUR), context, T0).outcome is None
    assert route(request(client_time=T0 - 4 * HOUR - 1), context, T0).outcome is Outcome.TIME_SKEW


def test_refused_records_one_event_and_no_write(context: HostContext) -> None:
    req = request(key="garbage")
    decision = refused(req, route(req, context, T0), T0)
    assert decision.write is None and decision.ticket is None
    assert [e.kind for e in decision.events] == ["activation_request"]
    assert decision.code == "invalid_key"


def test_threshold_is_reached_exactly_at_the_fifth_client(context: HostContext) -> None:
    for count_before in range(4):
        d = decide(request(), GROUP, GroupView(count_before, None), context, T0)
        assert d.outcome is Outcome.BELOW_THRESHOLD
        assert d.count == count_before + 1 and d.threshold == 5
        assert d.write is not None and d.write.valid_until is None
        assert d.message == f"{count_before + 1} of 5 clients so far"
        assert d.code == "count_insufficient"
    d = decide(request(), GROUP, GroupView(4, None), context, T0)
    assert d.outcome is Outcome.ACTIVATED and d.count == 5
    assert d.ticket is not None and d.ticket.valid_until == T0 + 180 * DAY
    assert d.write is not None and d.write.valid_until == T0 + 180 * DAY
    assert d.code is None


def test_a_counted_client_is_not_counted_twice(context: HostContext) -> None:
    req = request()
    row = ClientRow(req.cmid, GROUP, req.fingerprint, False, T0 - DAY, T0 - DAY)
    d = decide(req, GROUP, GroupView(4, row), context, T0)
    assert d.count == 4 and d.outcome is Outcome.BELOW_THRESHOLD
    # The same client seen 31 days ago has dropped out of the window: it counts again.
    stale = replace(row, last_seen=T0 - 31 * DAY)
    assert decide(req, GROUP, GroupView(4, stale), context, T0).count == 5


def test_blocked_clients_are_refused_and_not_written(context: HostContext) -> None:
    req = request()
    row = ClientRow(req.cmid, GROUP, req.fingerprint, True, T0, T0)
    d = decide(req, GROUP, GroupView(10, row), context, T0)
    assert d.outcome is Outcome.BLOCKED and d.write is None and d.ticket is None
    assert d.code == "client_blocked"


def test_cloned_image_is_recorded(context: HostContext) -> None:
    req = request(fingerprint="cd" * 16)
    row = ClientRow(req.cmid, GROUP, "ab" * 16, False, T0 - DAY, T0 - DAY)
    d = decide(req, GROUP, GroupView(9, row), context, T0)
    assert [e.kind for e in d.events] == ["activation_request", "cloned_image"]
    assert d.events[1].details["old_fingerprint"] == "ab" * 16
    assert d.write is not None and d.write.fingerprint == "cd" * 16
    assert d.outcome is Outcome.ACTIVATED


def test_admin_intervals_flow_into_the_ticket() -> None:
    vendor = Vendor()
    cert = vendor.certificate(
        crypto.SigningKey.generate(), groups={GROUP: GroupPolicy(threshold=1)}
    )
    ctx = HostContext("acme", cert, renewal_interval=DAY, retry_interval=HOUR)
    d = decide(request(), GROUP, GroupView(0, None), ctx, T0)
    assert d.ticket is not None
    assert (d.ticket.renewal_interval, d.ticket.retry_interval) == (DAY, HOUR)
    assert d.ticket.issuer_id == "host-1" and d.ticket.cert_id == "cert-1"


def test_every_outcome_has_a_code_or_is_success() -> None:
    assert set(OUTCOME_CODES) == set(Outcome)
