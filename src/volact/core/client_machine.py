"""The client's licensing state machine for one installed product (SPEC §3), as pure functions.

A :class:`ClientRecord` (:mod:`volact.core.client_record`, with its JSON codec) is everything the
SDK keeps about one installed product; every function here takes a record and ``now`` (the
client's clock, Unix seconds) and returns a new record or a :class:`Status`. Nothing here reads
a clock, draws random numbers or touches a file: a new CMID is passed in, and the SDK writes
what these functions return.

Rules (everything that changes a client's state lives in this file):

1. The state (``phase``) changes only through :data:`TRANSITIONS`, a table of
   ``(source, event, target, reason)`` rows; the lifecycle diagram in ``docs/lifecycle.md`` is
   generated from it (:mod:`volact.core.lifecycle`). A row whose ``keep_reason`` is set changes
   data, not state, and keeps the record's reason.
2. ``reason`` is ``None`` in every state but ``notification``, where it says why:
   ``oob_grace_expired``, ``oot_grace_expired`` or ``clock_tampered``.
3. Installing a key enters ``oob_grace``; the out-of-box grace runs from ``installed_at`` (but
   never from later than the trusted time: :func:`oob_grace_start`) for ``oob_grace`` seconds
   (from the descriptor, rule 15). A grace of 0, or one already over, goes on to
   ``notification`` at once (the time events of rule 5 apply right after every event).
4. A successful activation goes to ``licensed`` from any state, with valid-until = the ticket's
   (its issued-at + the vendor's validity), so a renewal moves valid-until later. A renewal
   never shortens validity: if the new ticket ends earlier than the one held (another host with
   a shorter policy, a host clock behind), the longer ticket is kept and only its renewal time
   moves. ``valid_until`` ``None`` is a permanent (MAK) activation, longer than any other.
   The one exception: a held ticket issued more than the accepted skew (4 hours) after the new
   success's trusted time (rule 7; the clocks went back) is replaced, since its signed floor
   would contradict the success.
5. Time events, checked in this order by :func:`advance` until none applies:
   a. ``now`` earlier than the trusted time less the accepted skew (4 hours; a clock that
      ran that fast when the SDK wrote state, then corrected, is honest) by more than
      ``CLOCK_ROLLBACK_TOLERANCE`` → ``notification`` / ``clock_tampered``;
   b. ``licensed`` and ``now`` ≥ valid-until → ``oot_grace``;
   c. ``oot_grace`` and ``now`` ≥ valid-until + the ticket's OOT grace → ``notification`` /
      ``oot_grace_expired``;
   d. ``oob_grace`` and ``now`` ≥ ``installed_at`` + OOB grace → ``notification`` /
      ``oob_grace_expired``.
6. ``clock_tampered`` is sticky: until the next successful activation, no other event changes
   the state or reason (their other effects still apply). A rearm is refused meanwhile.
7. Trusted time is the latest time the client trusts. :func:`observe` raises it to ``now`` when
   the SDK writes state (unless tampered). A successful activation re-anchors it to the earlier
   of the ticket's issued-at (the host's clock) and ``now``: the host accepted the client's
   clock (within 4 hours of its own), and taking the earlier of the two means that a later
   correction of the client's clock towards the host's is never mistaken for tampering (the
   SDK writes that record as it is, without observing ``now`` again). The trusted time is
   never earlier than the held ticket's issued-at less the accepted skew (4 hours): that floor
   is signed, so no edit of the state file lowers it.
8. A failed activation changes no state; it records ``last_attempt_at`` and ``last_error``, and
   a retry interval the host sent (clamped to the bounds of SPEC §3, so a wrong host can neither
   make the client hammer it nor make it sleep for months).
9. A rearm (not while ``licensed``, at most ``rearm_limit`` times) restarts the OOB grace at
   ``now`` with a new CMID; the old activation, bound to the old CMID, is dropped.
10. A fingerprint change means a cloned image: the record takes a new CMID (the old one goes to
    ``cloned_from``) and drops its activation, whose ticket was bound to the old fingerprint; it
    re-enters ``oob_grace`` with the *original* install time (a clone gets no fresh grace).
11. Replacing the key with another one drops the activation (it was for the old key) and keeps
    the install time, CMID and rearm count; installing the same key again changes nothing.
12. When to try again (:func:`next_deadline`): a licensed client renews at its last renewal +
    the renewal interval (never later than valid-until), or, after a failed renewal, at the
    failure + the retry interval; a permanent activation never renews. Any other client retries
    at its last attempt + the retry interval (2 hours until a host says otherwise), at once if it
    never tried. A deadline is never earlier than ``now``.
13. The record's copy of the held activation (valid-until, grace, issue time, issuer,
    certificate) is always exactly the held ticket's. The SDK re-verifies the stored ticket
    offline whenever it reports status, then :func:`check_stored_activation` compares the copy
    with it, so an edited state file cannot stretch a signed ticket.
14. A held activation whose chain does not verify (an edited state file, another vendor's
    root) does not count: :func:`discard_activation` drops it and, as after a fingerprint
    change, the record re-enters ``oob_grace`` with its *original* install time (no fresh
    grace); its attempt history stays. The SDK reports the status of the discarded record and
    writes nothing.
15. The OOB grace and the rearm limit are the signed descriptor's (:func:`with_descriptor`):
    the record's copies are not trusted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from volact.core import keys, validate
from volact.core.client_record import (
    CLOCK_TAMPERED,
    CLONED_FROM_LIMIT,
    DEFAULT_RENEWAL_INTERVAL,
    DEFAULT_RETRY_INTERVAL,
    INSTALLABLE_CHANNELS,
    NOTIFICATION_REASONS,
    OOB_GRACE_EXPIRED,
    OOT_GRACE_EXPIRED,
    RECORD_VERSION,
    ClientRecord,
    StoredActivation,
)
from volact.core.descriptor import ProductDescriptor
from volact.core.durations import DAY
from volact.core.errors import (
    CODES,
    BadRequest,
    ClockTampered,
    InvalidKey,
    InvalidTicket,
    RearmLimit,
)
from volact.core.policy import (
    CLOCK_ROLLBACK_TOLERANCE,
    CLOCK_SKEW_TOLERANCE,
    EXPIRY_WARNING,
    INTERVAL_BOUNDS,
)
from volact.core.states import State
from volact.core.tickets import Activation

__all__ = [
    "CLOCK_TAMPERED",
    "CLONED_FROM_LIMIT",
    "DEFAULT_RENEWAL_INTERVAL",
    "DEFAULT_RETRY_INTERVAL",
    "ENDS_TAMPERING",
    "NOTIFICATION_REASONS",
    "OOB_GRACE_EXPIRED",
    "OOT_GRACE_EXPIRED",
    "RECORD_VERSION",
    "TRANSITIONS",
    "ClientEvent",
    "ClientRecord",
    "Status",
    "StoredActivation",
    "Transition",
    "advance",
    "check_fingerprint",
    "check_stored_activation",
    "discard_activation",
    "install_key",
    "next_deadline",
    "observe",
    "oob_grace_start",
    "rearm",
    "record_activation",
    "record_failure",
    "replace_key",
    "request_state",
    "status",
    "trusted_time",
    "with_descriptor",
]


class ClientEvent(enum.StrEnum):
    """Everything that can happen to a client record."""

    KEY_INSTALLED = "key_installed"
    KEY_REPLACED = "key_replaced"
    ACTIVATION_SUCCEEDED = "activation_succeeded"
    ACTIVATION_FAILED = "activation_failed"
    VALIDITY_ENDED = "validity_ended"
    OOT_GRACE_ENDED = "oot_grace_ended"
    OOB_GRACE_ENDED = "oob_grace_ended"
    REARMED = "rearmed"
    CLOCK_ROLLED_BACK = "clock_rolled_back"
    FINGERPRINT_CHANGED = "fingerprint_changed"
    ACTIVATION_DISCARDED = "activation_discarded"


@dataclass(frozen=True)
class Transition:
    """One row of the transition table."""

    source: State
    event: ClientEvent
    target: State
    reason: str | None = None
    keep_reason: bool = False


_INSTALLED = (State.OOB_GRACE, State.LICENSED, State.OOT_GRACE, State.NOTIFICATION)
_NOT_LICENSED = (State.OOB_GRACE, State.OOT_GRACE, State.NOTIFICATION)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(State.UNLICENSED, ClientEvent.KEY_INSTALLED, State.OOB_GRACE),
    *(Transition(s, ClientEvent.KEY_REPLACED, State.OOB_GRACE) for s in _INSTALLED),
    *(Transition(s, ClientEvent.ACTIVATION_SUCCEEDED, State.LICENSED) for s in _INSTALLED),
    *(Transition(s, ClientEvent.ACTIVATION_FAILED, s, keep_reason=True) for s in _INSTALLED),
    Transition(State.LICENSED, ClientEvent.VALIDITY_ENDED, State.OOT_GRACE),
    Transition(State.OOT_GRACE, ClientEvent.OOT_GRACE_ENDED, State.NOTIFICATION, OOT_GRACE_EXPIRED),
    Transition(State.OOB_GRACE, ClientEvent.OOB_GRACE_ENDED, State.NOTIFICATION, OOB_GRACE_EXPIRED),
    *(Transition(s, ClientEvent.REARMED, State.OOB_GRACE) for s in _NOT_LICENSED),
    *(
        Transition(s, ClientEvent.CLOCK_ROLLED_BACK, State.NOTIFICATION, CLOCK_TAMPERED)
        for s in _INSTALLED
    ),
    *(Transition(s, ClientEvent.FINGERPRINT_CHANGED, State.OOB_GRACE) for s in _INSTALLED),
    *(Transition(s, ClientEvent.ACTIVATION_DISCARDED, State.OOB_GRACE) for s in _INSTALLED),
)
_TABLE: dict[tuple[State, ClientEvent], Transition] = {(t.source, t.event): t for t in TRANSITIONS}
# Rule 6: the only events that end clock tampering.
ENDS_TAMPERING = frozenset({ClientEvent.ACTIVATION_SUCCEEDED})


@dataclass(frozen=True)
class Status:
    """What a client reports about one product at one moment."""

    state: State
    reason: str | None
    valid_until: int | None  # None: never activated, or permanent (MAK) when licensed
    grace_ends_at: int | None  # the end of the current OOB or OOT grace
    days_left: int | None  # whole days (rounded up) until the current state ends
    expiry_warning: bool  # licensed, and valid-until is within EXPIRY_WARNING
    next_attempt_at: int | None  # when the client tries (again); None = no need

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "reason": self.reason,
            "valid_until": self.valid_until,
            "grace_ends_at": self.grace_ends_at,
            "days_left": self.days_left,
            "expiry_warning": self.expiry_warning,
            "next_attempt_at": self.next_attempt_at,
        }


# --- the machine ----------------------------------------------------------------------------


def _fire(record: ClientRecord, event: ClientEvent) -> ClientRecord:
    """Apply one event's state change by the table (rules 1, 2 and 6)."""
    if record.tampered and event not in ENDS_TAMPERING:
        return record
    row = _TABLE[(record.phase, event)]
    reason = record.reason if row.keep_reason else row.reason
    return replace(record, phase=row.target, reason=reason)


def trusted_time(record: ClientRecord) -> int:
    """The latest time the client trusts (rule 7): the record's, never earlier than the signed
    floor of the held ticket (its issued-at less the accepted skew)."""
    held = record.activation
    if held is None:
        return record.trusted_time
    return max(record.trusted_time, held.issued_at - CLOCK_SKEW_TOLERANCE)


def oob_grace_start(record: ClientRecord) -> int:
    """Where the out-of-box grace starts (rule 3): ``installed_at``, never after trusted time."""
    return min(record.installed_at, trusted_time(record))


def _known_passed(record: ClientRecord) -> int:
    """A time the client knows has passed (rule 5a): the trusted time less the skew."""
    held = record.activation
    latest = record.trusted_time if held is None else max(record.trusted_time, held.issued_at)
    return latest - CLOCK_SKEW_TOLERANCE


def _time_event(record: ClientRecord, now: int) -> ClientEvent | None:
    """The first time event of rule 5 that applies at ``now``, if any."""
    if not record.tampered and now < _known_passed(record) - CLOCK_ROLLBACK_TOLERANCE:
        return ClientEvent.CLOCK_ROLLED_BACK
    activation = record.activation
    if record.phase is State.LICENSED:
        assert activation is not None
        if activation.valid_until is not None and now >= activation.valid_until:
            return ClientEvent.VALIDITY_ENDED
    elif record.phase is State.OOT_GRACE:
        assert activation is not None
        assert activation.valid_until is not None
        if now >= activation.valid_until + activation.oot_grace:
            return ClientEvent.OOT_GRACE_ENDED
    elif record.phase is State.OOB_GRACE and now >= oob_grace_start(record) + record.oob_grace:
        return ClientEvent.OOB_GRACE_ENDED
    return None


def advance(record: ClientRecord, now: int) -> ClientRecord:
    """Apply every time event due at ``now`` (rule 5). Persist what it returns (rule 6)."""
    while (event := _time_event(record, now)) is not None:
        record = _fire(record, event)
    return record


def _dropped(record: ClientRecord) -> ClientRecord:
    """The record without its activation and attempt history (a new CMID or key needs both)."""
    return replace(record, activation=None, last_attempt_at=None, last_error=None)


def _parse_installable_key(descriptor: ProductDescriptor, key_text: str) -> keys.ProductKey:
    key = keys.parse_key(key_text)
    if key.channel not in INSTALLABLE_CHANNELS:
        raise InvalidKey(
            f"a {key.channel.label} cannot be installed on a client; install the product's "
            "GVLK or a MAK",
            {"channel": key.channel.value},
        )
    if key.channel is keys.Channel.GVLK:
        keys.check_gvlk(key, descriptor.vendor_id, descriptor.group, descriptor.product)
    return key


def _new_cmid(record: ClientRecord, new_cmid: str) -> str:
    cmid = validate.uuid_text({"cmid": new_cmid}, "cmid")
    if cmid == record.cmid or cmid in record.cloned_from:
        raise BadRequest("the new CMID must differ from every earlier one", {"field": "cmid"})
    return cmid


def install_key(
    descriptor: ProductDescriptor, key_text: str, *, cmid: str, fingerprint: str, now: int
) -> ClientRecord:
    """A new record for a key installed on this machine (``slmgr /ipk``; rule 3).

    ``key_text`` must be the descriptor's product's GVLK or a MAK; ``cmid`` is a fresh random
    UUID and ``fingerprint`` the machine's hex fingerprint for this product. Raises
    :class:`InvalidKey` or :class:`BadRequest`.
    """
    key = _parse_installable_key(descriptor, key_text)
    record = ClientRecord(
        product=descriptor.product,
        key=key.text,
        channel=key.channel,
        cmid=validate.uuid_text({"cmid": cmid}, "cmid"),
        fingerprint=validate.hex_text({"fingerprint": fingerprint}, "fingerprint"),
        installed_at=now,
        oob_grace=descriptor.oob_grace,
        rearm_limit=descriptor.rearm_limit,
        rearm_count=0,
        phase=State.UNLICENSED,
        reason=None,
        activation=None,
        trusted_time=now,
    )
    return advance(_fire(record, ClientEvent.KEY_INSTALLED), now)


def replace_key(
    record: ClientRecord, descriptor: ProductDescriptor, key_text: str, now: int
) -> ClientRecord:
    """Install another key on an installed product (rule 11): e.g. a MAK over the GVLK."""
    if descriptor.product != record.product:
        raise BadRequest(
            f"the descriptor is for {descriptor.product!r}, the record for {record.product!r}"
        )
    key = _parse_installable_key(descriptor, key_text)
    if key.text == record.key:
        return advance(record, now)
    changed = replace(_dropped(record), key=key.text, channel=key.channel)
    return advance(_fire(changed, ClientEvent.KEY_REPLACED), now)


def _outlasts(held: int | None, offered: int | None) -> bool:
    """Whether an activation valid until ``held`` ends later than one until ``offered``."""
    if held is None:
        return offered is not None
    return offered is not None and held > offered


def _clamp_interval(seconds: int) -> int:
    low, high = INTERVAL_BOUNDS
    return max(low, min(seconds, high))


def record_activation(record: ClientRecord, activation: Activation, now: int) -> ClientRecord:
    """Record a successful activation or renewal (rules 4 and 7).

    The caller has verified the whole chain (:func:`volact.core.tickets.verify_activation`)
    against this record's CMID and fingerprint; a ticket for another product or machine still
    raises :class:`InvalidTicket` here, as a last line of defence.
    """
    ticket = activation.ticket
    if ticket.product != record.product:
        raise InvalidTicket("ticket is for another product")
    if ticket.cmid != record.cmid or ticket.fingerprint != record.fingerprint:
        raise InvalidTicket("ticket is for another machine")
    held = record.activation
    anchored = min(ticket.issued_at, now)
    if (
        held is not None
        and _outlasts(held.valid_until, ticket.valid_until)
        and held.issued_at - CLOCK_SKEW_TOLERANCE <= anchored
    ):
        kept = replace(held, renewed_at=now)
    else:
        kept = StoredActivation(
            ticket=ticket.token,
            certificate=None if activation.certificate is None else activation.certificate.token,
            issuer_id=ticket.issuer_id,
            issued_at=ticket.issued_at,
            valid_until=ticket.valid_until,
            oot_grace=ticket.oot_grace,
            renewed_at=now,
        )
    succeeded = replace(
        record,
        activation=kept,
        trusted_time=anchored,
        installed_at=min(record.installed_at, anchored),  # rule 3: never after trusted time
        renewal_interval=_clamp_interval(ticket.renewal_interval),
        retry_interval=_clamp_interval(ticket.retry_interval),
        last_attempt_at=now,
        last_error=None,
    )
    return advance(_fire(succeeded, ClientEvent.ACTIVATION_SUCCEEDED), now)


def check_stored_activation(record: ClientRecord, activation: Activation) -> None:
    """Check that the record holds exactly ``activation`` (rule 13).

    ``activation`` is the record's stored ticket (and certificate), re-verified by the caller
    with :func:`volact.core.tickets.verify_activation` against the record's CMID and
    fingerprint. Raises :class:`InvalidTicket` if the record holds no activation or its copy of
    the ticket's facts differs.
    """
    held = record.activation
    ticket = activation.ticket
    certificate = None if activation.certificate is None else activation.certificate.token
    signed = (
        ticket.token,
        certificate,
        ticket.issuer_id,
        ticket.issued_at,
        ticket.valid_until,
        ticket.oot_grace,
        ticket.cmid,
        ticket.fingerprint,
    )
    if held is None or signed != (
        held.ticket,
        held.certificate,
        held.issuer_id,
        held.issued_at,
        held.valid_until,
        held.oot_grace,
        record.cmid,
        record.fingerprint,
    ):
        raise InvalidTicket("the state file's activation differs from its signed ticket")


def record_failure(
    record: ClientRecord, code: str, now: int, retry_interval: int | None = None
) -> ClientRecord:
    """Record a failed activation attempt with its error code (rule 8).

    ``retry_interval``, if the host sent one, becomes the record's retry interval (clamped).
    A code that is not one of volact's (a peer can send anything) is recorded as ``internal``.
    """
    failed = replace(
        record,
        last_attempt_at=now,
        last_error=code if code in CODES else "internal",
        retry_interval=record.retry_interval
        if retry_interval is None
        else _clamp_interval(retry_interval),
    )
    return advance(_fire(failed, ClientEvent.ACTIVATION_FAILED), now)


def rearm(record: ClientRecord, now: int, new_cmid: str) -> ClientRecord:
    """Restart the OOB grace with a new CMID (rule 9; ``slmgr /rearm``).

    Raises :class:`RearmLimit` when no rearm is left, :class:`ClockTampered` while the clock is
    tampered, and :class:`BadRequest` when the product is licensed (it needs no rearm).
    """
    current = advance(record, now)
    if current.tampered:
        raise ClockTampered("the clock went backwards: correct it and activate, then rearm")
    if current.phase is State.LICENSED:
        raise BadRequest("the product is licensed and needs no rearm", {"state": "licensed"})
    if current.rearm_count >= current.rearm_limit:
        raise RearmLimit(
            f"this product was rearmed {current.rearm_count} times, the most allowed",
            {"rearm_count": current.rearm_count, "rearm_limit": current.rearm_limit},
        )
    rearmed = replace(
        _dropped(current),
        cmid=_new_cmid(current, new_cmid),
        installed_at=now,
        trusted_time=max(trusted_time(current), now),  # not tampered: now is trusted
        rearm_count=current.rearm_count + 1,
    )
    return advance(_fire(rearmed, ClientEvent.REARMED), now)


def check_fingerprint(
    record: ClientRecord, fingerprint: str, now: int, new_cmid: str
) -> ClientRecord:
    """Compare the machine's fingerprint with the record's (rule 10).

    Unchanged: the record, advanced to ``now``. Changed (a cloned image): a new CMID
    (``new_cmid``, a fresh random UUID the caller made), no activation.
    """
    fingerprint = validate.hex_text({"fingerprint": fingerprint}, "fingerprint")
    if fingerprint == record.fingerprint:
        return advance(record, now)
    cloned = replace(
        _dropped(record),
        cmid=_new_cmid(record, new_cmid),
        fingerprint=fingerprint,
        cloned_from=(*record.cloned_from, record.cmid)[-CLONED_FROM_LIMIT:],
    )
    return advance(_fire(cloned, ClientEvent.FINGERPRINT_CHANGED), now)


def discard_activation(record: ClientRecord, now: int) -> ClientRecord:
    """The record without its held activation, whose chain did not verify (rule 14).

    It re-enters ``oob_grace`` with the original install time, advanced to ``now``; a tampered
    clock stays tampered (rule 6). A record that holds no activation is returned as it is.
    """
    if record.activation is None:
        return record
    return advance(_fire(replace(record, activation=None), ClientEvent.ACTIVATION_DISCARDED), now)


def with_descriptor(record: ClientRecord, descriptor: ProductDescriptor) -> ClientRecord:
    """The record with the signed descriptor's OOB grace and rearm limit (rule 15)."""
    if (record.oob_grace, record.rearm_limit) == (descriptor.oob_grace, descriptor.rearm_limit):
        return record
    return replace(record, oob_grace=descriptor.oob_grace, rearm_limit=descriptor.rearm_limit)


def observe(record: ClientRecord, now: int) -> ClientRecord:
    """Advance to ``now`` and, unless the clock is tampered, trust ``now`` (rule 7).

    The SDK calls this whenever it writes the state file.
    """
    current = advance(record, now)
    if current.tampered:
        return current
    return replace(current, trusted_time=max(trusted_time(current), now))


def _retry_at(record: ClientRecord) -> int | None:
    if record.last_attempt_at is None:
        return None
    return record.last_attempt_at + record.retry_interval


def next_deadline(record: ClientRecord, now: int) -> int | None:
    """When the client should next try to activate or renew (rule 12); None: never."""
    current = advance(record, now)
    activation = current.activation
    if current.phase is State.LICENSED:
        assert activation is not None
        if activation.valid_until is None:
            return None
        deadline = min(activation.renewed_at + current.renewal_interval, activation.valid_until)
        retry_at = _retry_at(current)
        if current.last_error is not None and retry_at is not None:
            deadline = max(deadline, retry_at)
    else:
        retry_at = _retry_at(current)
        deadline = now if retry_at is None else retry_at
    return max(deadline, now)


def request_state(record: ClientRecord | None, now: int) -> State:
    """The state the client reports in its activation request."""
    return State.UNLICENSED if record is None else advance(record, now).phase


def _days_until(end: int, now: int) -> int:
    return max(0, -((now - end) // DAY))


def status(record: ClientRecord | None, now: int) -> Status:
    """The client's status at ``now`` (``None``: no key installed → ``unlicensed``)."""
    if record is None:
        return Status(State.UNLICENSED, None, None, None, None, False, None)
    current = advance(record, now)
    valid_until = current.valid_until
    grace_ends_at: int | None = None
    days_left: int | None = 0
    if current.phase is State.OOB_GRACE:
        grace_ends_at = oob_grace_start(current) + current.oob_grace
    elif current.phase is State.OOT_GRACE:
        assert current.activation is not None
        assert valid_until is not None
        grace_ends_at = valid_until + current.activation.oot_grace
    if grace_ends_at is not None:
        days_left = _days_until(grace_ends_at, now)
    elif current.phase is State.LICENSED:
        days_left = None if valid_until is None else _days_until(valid_until, now)
    warning = (
        current.phase is State.LICENSED
        and valid_until is not None
        and valid_until - now <= EXPIRY_WARNING
    )
    return Status(
        state=current.phase,
        reason=current.reason,
        valid_until=valid_until,
        grace_ends_at=grace_ends_at,
        days_left=days_left,
        expiry_warning=warning,
        next_attempt_at=next_deadline(current, now),
    )
