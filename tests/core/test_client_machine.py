"""Every transition and every time branch of the client machine, with explicit ``now`` values."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from volact.core import client_machine as cm
from volact.core.descriptor import ProductDescriptor
from volact.core.durations import DAY, HOUR, MINUTE
from volact.core.errors import (
    BadRequest,
    ClockTampered,
    InvalidKey,
    InvalidTicket,
    RearmLimit,
    UnsupportedVersion,
)
from volact.core.keys import Channel, make_gvlk, make_secret_key
from volact.core.lifecycle import mermaid_diagram
from volact.core.policy import CLOCK_ROLLBACK_TOLERANCE, CLOCK_SKEW_TOLERANCE, GroupPolicy
from volact.core.states import State
from volact.core.tickets import ISSUER_HOST, ISSUER_VENDOR, Activation, HostCertificate, Ticket

T0 = 1_700_000_000
VENDOR = "acme"
GROUP = "office-2026"
PRODUCT = "writer-2026"
GVLK = make_gvlk(VENDOR, GROUP, PRODUCT).text
MAK = make_secret_key(Channel.MAK, bytes(range(12))).text
HOST_KEY = make_secret_key(Channel.HOST, bytes(range(1, 13))).text
CMIDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(64)]
FINGERPRINT = "ab" * 32
OTHER_FINGERPRINT = "cd" * 32


def day(n: float) -> int:
    return T0 + int(n * DAY)


def descriptor(**changes: Any) -> ProductDescriptor:
    base = ProductDescriptor(
        vendor_id=VENDOR,
        vendor_name="Acme",
        root_keys=("k4.public.unused",),
        product=PRODUCT,
        product_name="Writer",
        group=GROUP,
        gvlk=GVLK,
    )
    return replace(base, **changes)


def installed(key: str = GVLK, now: int = T0, **changes: Any) -> cm.ClientRecord:
    return cm.install_key(
        descriptor(**changes), key, cmid=CMIDS[0], fingerprint=FINGERPRINT, now=now
    )


_serial = iter(range(1_000_000))


def activation(
    record: cm.ClientRecord,
    issued_at: int,
    validity: int | None = 180 * DAY,
    *,
    renewal_interval: int = 7 * DAY,
    retry_interval: int = 2 * HOUR,
    oot_grace: int = 30 * DAY,
    with_certificate: bool = True,
    **ticket_changes: Any,
) -> Activation:
    """A ticket for ``record`` as a verified chain would give it (signatures are not needed)."""
    vendor_ticket = validity is None
    ticket = Ticket(
        issuer=ISSUER_VENDOR if vendor_ticket else ISSUER_HOST,
        issuer_id=VENDOR if vendor_ticket else "host-1",
        product=record.product,
        group=GROUP,
        cmid=record.cmid,
        fingerprint=record.fingerprint,
        issued_at=issued_at,
        valid_until=None if validity is None else issued_at + validity,
        renewal_interval=renewal_interval,
        retry_interval=retry_interval,
        oot_grace=oot_grace,
        count=5,
        threshold=5,
        nonce="bm9uY2Vub25jZW5vbmNl",
        token=f"v4.public.ticket{next(_serial)}.e30",
    )
    ticket = replace(ticket, **ticket_changes)
    certificate = None
    if with_certificate and not vendor_ticket:
        certificate = HostCertificate(
            cert_id="cert-1",
            vendor_id=VENDOR,
            host_id="host-1",
            host_key="k4.public.host",
            customer="Contoso",
            key_serial="host-0001",
            groups={GROUP: GroupPolicy()},
            not_before=T0 - DAY,
            not_after=T0 + 730 * DAY,
            issued_at=T0 - DAY,
            token="v4.public.certificate.e30",
        )
    return Activation(ticket, certificate)


def licensed(at: int = T0, validity: int | None = 180 * DAY) -> cm.ClientRecord:
    record = installed(now=at)
    return cm.record_activation(record, activation(record, at, validity), at)


# --- installing a key and the out-of-box grace ------------------------------------------------


def test_install_starts_the_oob_grace() -> None:
    record = installed()
    assert record.phase is State.OOB_GRACE
    assert record.reason is None
    assert record.channel is Channel.GVLK
    assert record.key == GVLK
    assert record.trusted_time == T0
    st = cm.status(record, day(0))
    assert st.state is State.OOB_GRACE
    assert st.grace_ends_at == day(30)
    assert st.days_left == 30
    assert st.valid_until is None
    assert st.next_attempt_at == T0  # never tried: try at once


@pytest.mark.parametrize(
    ("when", "state", "reason", "days_left"),
    [
        (day(0), State.OOB_GRACE, None, 30),
        (day(29), State.OOB_GRACE, None, 1),
        (day(30) - 1, State.OOB_GRACE, None, 1),
        (day(30), State.NOTIFICATION, "oob_grace_expired", 0),
        (day(31), State.NOTIFICATION, "oob_grace_expired", 0),
    ],
)
def test_oob_grace_without_activation(
    when: int, state: State, reason: str | None, days_left: int
) -> None:
    st = cm.status(installed(), when)
    assert (st.state, st.reason, st.days_left) == (state, reason, days_left)
    assert cm.request_state(installed(), when) is state


def test_zero_oob_grace_goes_straight_to_notification() -> None:
    record = installed(oob_grace=0)
    assert record.phase is State.NOTIFICATION
    assert record.reason == "oob_grace_expired"


def test_install_a_mak() -> None:
    record = installed(MAK)
    assert record.channel is Channel.MAK
    assert record.phase is State.OOB_GRACE


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (HOST_KEY, InvalidKey),
        (make_gvlk(VENDOR, GROUP, "sheets-2026").text, InvalidKey),
        ("not a key", InvalidKey),
    ],
)
def test_install_refuses_wrong_keys(key: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        installed(key)


def test_install_validates_cmid_and_fingerprint() -> None:
    with pytest.raises(BadRequest):
        cm.install_key(descriptor(), GVLK, cmid="nope", fingerprint=FINGERPRINT, now=T0)
    with pytest.raises(BadRequest):
        cm.install_key(descriptor(), GVLK, cmid=CMIDS[0], fingerprint="XYZ", now=T0)


def test_no_record_is_unlicensed() -> None:
    st = cm.status(None, T0)
    assert st.state is State.UNLICENSED
    assert st.days_left is None
    assert st.next_attempt_at is None
    assert cm.request_state(None, T0) is State.UNLICENSED


# --- activation, validity and the out-of-tolerance grace --------------------------------------


def test_activation_licenses_for_the_ticket_validity() -> None:
    record = licensed()
    assert record.phase is State.LICENSED
    assert record.valid_until == day(180)
    assert record.last_error is None
    assert record.activation is not None
    assert record.activation.certificate == "v4.public.certificate.e30"
    st = cm.status(record, day(1))
    assert st.state is State.LICENSED
    assert st.valid_until == day(180)
    assert st.days_left == 179
    assert st.grace_ends_at is None
    assert not st.expiry_warning


@pytest.mark.parametrize(
    ("when", "state", "reason", "warning", "grace_ends_at"),
    [
        (day(149) - 1, State.LICENSED, None, False, None),
        (day(150), State.LICENSED, None, True, None),
        (day(179), State.LICENSED, None, True, None),
        (day(180) - 1, State.LICENSED, None, True, None),
        (day(180), State.OOT_GRACE, None, False, day(210)),
        (day(209), State.OOT_GRACE, None, False, day(210)),
        (day(210), State.NOTIFICATION, "oot_grace_expired", False, None),
        (day(400), State.NOTIFICATION, "oot_grace_expired", False, None),
    ],
)
def test_validity_then_oot_grace_then_notification(
    when: int, state: State, reason: str | None, warning: bool, grace_ends_at: int | None
) -> None:
    st = cm.status(licensed(), when)
    assert (st.state, st.reason, st.expiry_warning, st.grace_ends_at) == (
        state,
        reason,
        warning,
        grace_ends_at,
    )
    assert st.valid_until == day(180)


def test_renewal_after_8_days_moves_validity() -> None:
    record = licensed()
    renewed = cm.record_activation(record, activation(record, day(8)), day(8))
    assert renewed.valid_until == day(188)
    assert renewed.activation is not None
    assert renewed.activation.renewed_at == day(8)
    assert cm.status(renewed, day(187)).state is State.LICENSED
    assert cm.status(renewed, day(188)).state is State.OOT_GRACE


def test_a_shorter_ticket_never_shortens_validity() -> None:
    record = licensed()
    held = record.activation
    assert held is not None
    renewed = cm.record_activation(record, activation(record, day(8), 30 * DAY), day(8))
    assert renewed.activation == replace(held, renewed_at=day(8))
    assert renewed.valid_until == day(180)
    assert cm.next_deadline(renewed, day(8)) == day(15)


def test_activation_from_every_unlicensed_state() -> None:
    expired = cm.advance(installed(), day(31))
    assert expired.phase is State.NOTIFICATION
    relicensed = cm.record_activation(expired, activation(expired, day(31)), day(31))
    assert (relicensed.phase, relicensed.reason) == (State.LICENSED, None)

    in_oot = cm.advance(licensed(), day(190))
    assert in_oot.phase is State.OOT_GRACE
    back = cm.record_activation(in_oot, activation(in_oot, day(190)), day(190))
    assert back.phase is State.LICENSED
    assert back.valid_until == day(370)


def test_an_already_expired_ticket_lands_in_oot_grace() -> None:
    record = installed()
    late = cm.record_activation(record, activation(record, day(0), 1 * DAY), day(2))
    assert late.phase is State.OOT_GRACE


@pytest.mark.parametrize(
    "changes",
    [{"cmid": CMIDS[9]}, {"fingerprint": OTHER_FINGERPRINT}, {"product": "sheets-2026"}],
)
def test_a_ticket_for_another_machine_or_product_is_refused(changes: dict[str, Any]) -> None:
    record = installed()
    with pytest.raises(InvalidTicket):
        cm.record_activation(record, activation(record, T0, **changes), T0)


def test_mak_activation_is_permanent() -> None:
    record = installed(MAK)
    mak = cm.record_activation(record, activation(record, T0, None), T0)
    assert mak.valid_until is None
    assert mak.activation is not None
    assert mak.activation.certificate is None
    for when in (day(1), day(10_000)):
        st = cm.status(mak, when)
        assert (st.state, st.days_left, st.expiry_warning) == (State.LICENSED, None, False)
        assert st.next_attempt_at is None
    # A later host ticket cannot shorten a permanent activation ...
    after = cm.record_activation(mak, activation(mak, day(5)), day(5))
    assert after.valid_until is None
    # ... while a permanent one replaces a finite one.
    gvlk = licensed()
    upgraded = cm.record_activation(gvlk, activation(gvlk, day(5), None), day(5))
    assert upgraded.valid_until is None
    # Two permanent activations: the newer ticket is held.
    newer = activation(upgraded, day(6), None)
    again = cm.record_activation(upgraded, newer, day(6))
    assert again.activation is not None
    assert again.activation.ticket == newer.ticket.token


# --- failures and intervals -------------------------------------------------------------------


def test_failure_keeps_the_state_and_records_the_error() -> None:
    record = installed()
    failed = cm.record_failure(record, "count_insufficient", day(1))
    assert failed.phase is State.OOB_GRACE
    assert failed.last_error == "count_insufficient"
    assert failed.last_attempt_at == day(1)
    assert failed.retry_interval == 2 * HOUR
    expired = cm.record_failure(cm.advance(record, day(31)), "host_unreachable", day(31))
    assert (expired.phase, expired.reason) == (State.NOTIFICATION, "oob_grace_expired")


def test_a_code_from_a_peer_that_volact_does_not_know_is_recorded_as_internal() -> None:
    failed = cm.record_failure(installed(), "x" * 500, T0)
    assert failed.last_error == "internal"
    assert cm.ClientRecord.from_dict(failed.to_dict()) == failed


@pytest.mark.parametrize(
    ("given", "kept"),
    [(None, 2 * HOUR), (HOUR, HOUR), (1, 15 * MINUTE), (365 * DAY, 30 * DAY)],
)
def test_a_host_retry_interval_is_clamped(given: int | None, kept: int) -> None:
    failed = cm.record_failure(installed(), "count_insufficient", T0, retry_interval=given)
    assert failed.retry_interval == kept
    assert cm.next_deadline(failed, T0) == T0 + kept


def test_ticket_intervals_are_taken_and_clamped() -> None:
    record = installed()
    act = activation(record, T0, renewal_interval=DAY, retry_interval=1)
    done = cm.record_activation(record, act, T0)
    assert (done.renewal_interval, done.retry_interval) == (DAY, 15 * MINUTE)


# --- the clock --------------------------------------------------------------------------------


def test_observe_raises_trusted_time() -> None:
    record = cm.observe(installed(), day(10))
    assert record.trusted_time == day(10)
    rolled_back = cm.observe(record, day(5))
    assert (rolled_back.reason, rolled_back.trusted_time) == ("clock_tampered", day(10))


def test_clock_steps_back_within_the_accepted_skew_are_tolerated() -> None:
    # The clock that said day 10 may have run up to 4 hours fast (a dual-boot machine).
    record = cm.observe(installed(), day(10))
    within = day(10) - CLOCK_SKEW_TOLERANCE - CLOCK_ROLLBACK_TOLERANCE
    assert cm.status(record, within).state is State.OOB_GRACE
    assert cm.observe(record, within).trusted_time == day(10)


def test_clock_rollback_is_tampering_until_the_next_activation() -> None:
    record = cm.observe(installed(), day(10))
    back = cm.advance(record, day(10) - CLOCK_SKEW_TOLERANCE - CLOCK_ROLLBACK_TOLERANCE - 1)
    assert (back.phase, back.reason) == (State.NOTIFICATION, "clock_tampered")
    assert cm.status(back, day(3)).reason == "clock_tampered"
    # Sticky: a clock set right again, failures and time events leave it in place.
    assert cm.advance(back, day(50)).reason == "clock_tampered"
    failed = cm.record_failure(back, "host_unreachable", day(11))
    assert failed.reason == "clock_tampered"
    assert cm.observe(back, day(12)).trusted_time == day(10)
    cloned = cm.check_fingerprint(back, OTHER_FINGERPRINT, day(11), CMIDS[1])
    assert (cloned.phase, cloned.reason, cloned.cmid) == (
        State.NOTIFICATION,
        "clock_tampered",
        CMIDS[1],
    )
    with pytest.raises(ClockTampered):
        cm.rearm(back, day(11), CMIDS[2])
    assert cm.next_deadline(failed, day(11)) == day(11) + 2 * HOUR
    # Only a successful activation ends it; trusted time is re-anchored to the host's clock.
    fixed = cm.record_activation(back, activation(back, day(11) + 60), day(11))
    assert (fixed.phase, fixed.reason) == (State.LICENSED, None)
    assert fixed.trusted_time == day(11)


def test_rollback_from_every_installed_state() -> None:
    for record in (
        cm.observe(installed(), day(1)),
        cm.observe(licensed(), day(1)),
        cm.observe(licensed(), day(190)),
        cm.observe(installed(), day(40)),
    ):
        back = cm.advance(record, record.trusted_time - DAY)
        assert (back.phase, back.reason) == (State.NOTIFICATION, "clock_tampered")


def test_licensed_never_past_valid_until_even_after_a_rollback() -> None:
    record = cm.observe(licensed(), day(179))
    assert cm.status(record, day(200)).state is State.OOT_GRACE
    assert cm.status(record, day(100)).reason == "clock_tampered"


# --- rearm ------------------------------------------------------------------------------------


def test_rearm_restarts_the_oob_grace_with_a_new_cmid() -> None:
    expired = cm.advance(installed(), day(31))
    rearmed = cm.rearm(expired, day(31), CMIDS[1])
    assert (rearmed.phase, rearmed.reason) == (State.OOB_GRACE, None)
    assert rearmed.installed_at == day(31)
    assert rearmed.cmid == CMIDS[1]
    assert rearmed.rearm_count == 1
    assert rearmed.cloned_from == ()
    assert cm.status(rearmed, day(60)).state is State.OOB_GRACE
    assert cm.status(rearmed, day(61)).state is State.NOTIFICATION


def test_rearm_limit() -> None:
    record = installed()
    for n in range(1, 6):
        record = cm.rearm(record, day(n), CMIDS[n])
    assert record.rearm_count == 5
    with pytest.raises(RearmLimit) as caught:
        cm.rearm(record, day(6), CMIDS[6])
    assert caught.value.details == {"rearm_count": 5, "rearm_limit": 5}
    with pytest.raises(RearmLimit):
        cm.rearm(installed(rearm_limit=0), T0, CMIDS[1])


def test_rearm_drops_an_expired_activation() -> None:
    in_oot = cm.advance(licensed(), day(190))
    rearmed = cm.rearm(in_oot, day(190), CMIDS[1])
    assert rearmed.phase is State.OOB_GRACE
    assert rearmed.activation is None


def test_rearm_refusals() -> None:
    with pytest.raises(BadRequest):
        cm.rearm(licensed(), day(1), CMIDS[1])
    with pytest.raises(BadRequest):
        cm.rearm(installed(), day(1), CMIDS[0])  # the same CMID
    with pytest.raises(BadRequest):
        cm.rearm(installed(), day(1), "not-a-uuid")


# --- cloned images ----------------------------------------------------------------------------


def test_same_fingerprint_changes_nothing() -> None:
    record = licensed()
    assert cm.check_fingerprint(record, FINGERPRINT, day(1), CMIDS[1]) == record


def test_fingerprint_change_makes_a_new_cmid_and_drops_the_activation() -> None:
    record = cm.record_failure(licensed(), "host_unreachable", day(1))
    cloned = cm.check_fingerprint(record, OTHER_FINGERPRINT, day(2), CMIDS[1])
    assert cloned.cmid == CMIDS[1]
    assert cloned.fingerprint == OTHER_FINGERPRINT
    assert cloned.cloned_from == (CMIDS[0],)
    assert cloned.activation is None
    assert (cloned.last_attempt_at, cloned.last_error) == (None, None)
    assert cloned.phase is State.OOB_GRACE
    assert cloned.installed_at == T0  # a clone gets no fresh grace
    assert cm.next_deadline(cloned, day(2)) == day(2)
    # A clone made after the grace ended is in notification until it activates.
    late = cm.check_fingerprint(licensed(), OTHER_FINGERPRINT, day(40), CMIDS[1])
    assert (late.phase, late.reason) == (State.NOTIFICATION, "oob_grace_expired")


def test_a_discarded_activation_goes_back_to_the_original_grace() -> None:
    record = cm.record_failure(licensed(), "host_unreachable", day(1))
    discarded = cm.discard_activation(record, day(2))
    assert (discarded.phase, discarded.reason, discarded.activation) == (
        State.OOB_GRACE,
        None,
        None,
    )
    # The install time, CMID and attempt history stay: only the activation goes.
    assert (discarded.installed_at, discarded.cmid) == (T0, CMIDS[0])
    assert (discarded.last_attempt_at, discarded.last_error) == (day(1), "host_unreachable")
    # After the grace it is in notification; a record without an activation is left alone.
    late = cm.discard_activation(licensed(), day(40))
    assert (late.phase, late.reason) == (State.NOTIFICATION, "oob_grace_expired")
    assert cm.discard_activation(discarded, day(3)) is discarded


def test_a_discarded_activation_leaves_a_tampered_clock_tampered() -> None:
    record = cm.observe(licensed(), day(10))
    back = cm.advance(record, day(9))
    discarded = cm.discard_activation(back, day(9))
    assert (discarded.phase, discarded.reason) == (State.NOTIFICATION, "clock_tampered")
    assert discarded.activation is None


def test_cloned_from_keeps_the_most_recent_cmids() -> None:
    record = installed()
    prints = [f"{n:064x}" for n in range(1, 40)]
    for n, fingerprint in enumerate(prints, start=1):
        record = cm.check_fingerprint(record, fingerprint, day(1), CMIDS[n])
    assert len(record.cloned_from) == cm.CLONED_FROM_LIMIT
    assert record.cloned_from[-1] == CMIDS[38]
    with pytest.raises(BadRequest):
        cm.check_fingerprint(record, FINGERPRINT, day(1), CMIDS[38])  # an earlier CMID
    with pytest.raises(BadRequest):
        cm.check_fingerprint(record, "not hex", day(1), CMIDS[50])


# --- replacing the key ------------------------------------------------------------------------


def test_replace_key() -> None:
    record = licensed()
    assert cm.replace_key(record, descriptor(), GVLK, day(1)) == record
    mak = cm.replace_key(record, descriptor(), MAK, day(1))
    assert (mak.channel, mak.phase, mak.activation) == (Channel.MAK, State.OOB_GRACE, None)
    assert (mak.cmid, mak.installed_at) == (record.cmid, record.installed_at)
    late = cm.replace_key(record, descriptor(), MAK, day(40))
    assert late.phase is State.NOTIFICATION
    with pytest.raises(BadRequest):
        cm.replace_key(record, descriptor(product="sheets-2026"), GVLK, day(1))
    with pytest.raises(InvalidKey):
        cm.replace_key(record, descriptor(), HOST_KEY, day(1))


# --- when to try again ------------------------------------------------------------------------


def test_next_deadline_licensed_renews_every_renewal_interval() -> None:
    record = licensed()
    assert cm.next_deadline(record, day(1)) == day(7)
    assert cm.next_deadline(record, day(9)) == day(9)  # overdue: now, never earlier


def test_next_deadline_after_a_failed_renewal_uses_the_retry_interval() -> None:
    record = cm.record_failure(licensed(), "host_unreachable", day(7))
    assert cm.next_deadline(record, day(7)) == day(7) + 2 * HOUR
    assert cm.status(record, day(7)).next_attempt_at == day(7) + 2 * HOUR


def test_next_deadline_a_failure_before_renewal_is_due_waits_for_the_renewal() -> None:
    record = cm.record_failure(licensed(), "host_unreachable", day(1))
    assert cm.next_deadline(record, day(1)) == day(7)


def test_next_deadline_is_never_later_than_valid_until() -> None:
    record = installed()
    short = cm.record_activation(
        record, activation(record, T0, 2 * DAY, renewal_interval=30 * DAY), T0
    )
    assert cm.next_deadline(short, T0) == day(2)


def test_next_deadline_not_licensed() -> None:
    record = installed()
    assert cm.next_deadline(record, day(3)) == day(3)
    failed = cm.record_failure(record, "no_host_found", day(3))
    assert cm.next_deadline(failed, day(3)) == day(3) + 2 * HOUR
    # Expired while the machine was off: the last attempt is long past, so try now.
    expired = cm.advance(licensed(), day(200))
    assert cm.next_deadline(expired, day(200)) == day(200)


# --- the held activation against its signed ticket --------------------------------------------


def test_check_stored_activation() -> None:
    record = installed()
    granted = activation(record, T0)
    held = cm.record_activation(record, granted, T0)
    cm.check_stored_activation(held, granted)
    renewed = cm.record_activation(held, activation(held, day(8), 30 * DAY), day(8))
    cm.check_stored_activation(renewed, granted)  # the longer ticket is still the one held
    mak_record = installed(MAK)
    mak = activation(mak_record, T0, None)
    cm.check_stored_activation(cm.record_activation(mak_record, mak, T0), mak)


@pytest.mark.parametrize(
    "edit",
    [
        {"valid_until": day(900)},
        {"oot_grace": 180 * DAY},
        {"issued_at": day(1)},
        {"issuer_id": "host-2"},
        {"certificate": None},
        {"ticket": "v4.public.other.e30"},
    ],
)
def test_an_edited_state_file_cannot_stretch_a_ticket(edit: dict[str, Any]) -> None:
    record = installed()
    granted = activation(record, T0)
    held = cm.record_activation(record, granted, T0)
    assert held.activation is not None
    edited = replace(held, activation=replace(held.activation, **edit))
    with pytest.raises(InvalidTicket):
        cm.check_stored_activation(edited, granted)


def test_check_stored_activation_needs_an_activation() -> None:
    record = installed()
    with pytest.raises(InvalidTicket):
        cm.check_stored_activation(record, activation(record, T0))


def test_a_hand_made_record_must_keep_reason_and_state_together() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        replace(installed(), reason="clock_tampered")
    with pytest.raises(ValueError, match="does not fit"):
        replace(cm.advance(installed(), day(40)), reason=None)


# --- the record as JSON -----------------------------------------------------------------------


def _samples() -> list[cm.ClientRecord]:
    tampered = cm.advance(cm.observe(licensed(), day(5)), day(1))
    cloned = cm.check_fingerprint(installed(), OTHER_FINGERPRINT, day(1), CMIDS[3])
    mak = installed(MAK)
    return [
        installed(),
        licensed(),
        cm.record_failure(licensed(), "host_unreachable", day(8), retry_interval=HOUR),
        cm.record_activation(mak, activation(mak, T0, None), T0),
        tampered,
        cloned,
        cm.advance(licensed(), day(200)),
        cm.advance(installed(), day(40)),
    ]


@pytest.mark.parametrize("record", _samples())
def test_round_trip(record: cm.ClientRecord) -> None:
    text = json.dumps(record.to_dict())
    assert cm.ClientRecord.from_dict(json.loads(text)) == record


def _good() -> dict[str, Any]:
    record = cm.record_failure(licensed(), "host_unreachable", day(8))
    return json.loads(json.dumps(record.to_dict()))


def _with(**changes: Any) -> dict[str, Any]:
    data = _good()
    data.update(changes)
    return data


def _with_activation(**changes: Any) -> dict[str, Any]:
    data = _good()
    data["activation"] = {**data["activation"], **changes}
    return data


BAD_RECORDS: list[tuple[str, Any]] = [
    ("not an object", []),
    ("no version", {k: v for k, v in _good().items() if k != "v"}),
    ("string version", _with(v="1")),
    ("unknown field", _with(extra=1)),
    ("key missing", {k: v for k, v in _good().items() if k != "key"}),
    ("key garbage", _with(key="BBBBB-BBBBB-BBBBB-BBBBB-BBBBB")),
    ("channel mismatch", _with(channel="mak")),
    ("host key", _with(key=HOST_KEY, channel="host")),
    ("phase unknown", _with(phase="happy")),
    ("phase unlicensed", _with(phase="unlicensed")),
    ("phase not a string", _with(phase=3)),
    ("reason outside notification", _with(reason="oob_grace_expired")),
    ("notification without reason", _with(phase="notification", reason=None)),
    ("unknown reason", _with(phase="notification", reason="bored")),
    ("cloned_from not a list", _with(cloned_from="x")),
    ("cloned_from too long", _with(cloned_from=CMIDS[:33])),
    ("cloned_from not uuids", _with(cloned_from=["x" * 36])),
    ("rearm count over limit", _with(rearm_count=6)),
    ("negative time", _with(installed_at=-1)),
    ("oob grace too long", _with(oob_grace=181 * DAY)),
    ("retry interval too short", _with(retry_interval=1)),
    ("renewal interval too long", _with(renewal_interval=31 * DAY)),
    ("bool for an int", _with(trusted_time=True)),
    ("bad cmid", _with(cmid="abc")),
    ("bad fingerprint", _with(fingerprint="ZZ" * 16)),
    ("bad product", _with(product="Writer 2026")),
    ("last_error too long", _with(last_error="x" * 65)),
    ("licensed without activation", _with(activation=None)),
    ("oot_grace without activation", _with(phase="oot_grace", activation=None)),
    ("oob_grace with activation", _with(phase="oob_grace")),
    (
        "permanent oot_grace",
        _with(phase="oot_grace", activation=_with_activation(valid_until=None)["activation"]),
    ),
    ("error without attempt time", _with(last_attempt_at=None)),
    ("activation not an object", _with(activation="ticket")),
    ("activation unknown field", _with_activation(extra=1)),
    ("activation ends before it starts", _with_activation(valid_until=T0 - 1)),
    ("activation without ticket", _with_activation(ticket="")),
    ("activation ticket not a token", _with_activation(ticket="v4.public.a b.c")),
    ("activation certificate not a token", _with_activation(certificate="x")),
    ("activation grace negative", _with_activation(oot_grace=-1)),
]


@pytest.mark.parametrize(("label", "data"), BAD_RECORDS, ids=[label for label, _ in BAD_RECORDS])
def test_from_dict_refuses_bad_input(label: str, data: Any) -> None:
    with pytest.raises(BadRequest):
        cm.ClientRecord.from_dict(data)


def test_from_dict_refuses_a_newer_version() -> None:
    with pytest.raises(UnsupportedVersion):
        cm.ClientRecord.from_dict(_with(v=2))


def test_status_to_dict() -> None:
    st = cm.status(licensed(), day(1))
    assert st.to_dict() == {
        "state": "licensed",
        "reason": None,
        "valid_until": day(180),
        "grace_ends_at": None,
        "days_left": 179,
        "expiry_warning": False,
        "next_attempt_at": day(7),
    }


# --- the table --------------------------------------------------------------------------------


def test_the_table_has_one_row_per_state_and_event() -> None:
    pairs = [(row.source, row.event) for row in cm.TRANSITIONS]
    assert len(pairs) == len(set(pairs))
    assert {row.event for row in cm.TRANSITIONS} == set(cm.ClientEvent)
    assert {row.target for row in cm.TRANSITIONS} == set(State) - {State.UNLICENSED}
    for row in cm.TRANSITIONS:
        assert (row.reason is not None) == (
            row.target is State.NOTIFICATION and not row.keep_reason
        )
        assert row.reason is None or row.reason in cm.NOTIFICATION_REASONS


def test_the_diagram_shows_every_row() -> None:
    text = mermaid_diagram()
    assert text.startswith("stateDiagram-v2\n")
    for row in cm.TRANSITIONS:
        edge = next(
            line
            for line in text.splitlines()
            if line.strip().startswith(f"{row.source.value} --> {row.target.value} :")
        )
        assert row.event.value in edge
