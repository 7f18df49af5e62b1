"""Lifecycle invariants, checked by Hypothesis over random histories.

Client side (a ``RuleBasedStateMachine`` over :mod:`volact.core.client_machine`): a client is
never ``licensed`` at a time after its valid-until; a renewal never shortens validity; the
reason is set exactly in ``notification``; the next attempt is never in the past; a record
survives its JSON round trip.

Host side (:func:`volact.core.host_machine.decide` over a dict store): blocked CMIDs and CMIDs
last seen more than 30 days ago never count, and the threshold is reached exactly at the N-th
distinct client.
"""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from volact.core import client_machine as cm
from volact.core.descriptor import ProductDescriptor
from volact.core.durations import DAY, HOUR, MINUTE
from volact.core.errors import BadRequest, ClockTampered, RearmLimit
from volact.core.host_machine import (
    ClientRow,
    ClientWrite,
    Decision,
    GroupView,
    HostContext,
    Outcome,
    decide,
)
from volact.core.keys import Channel, make_gvlk, make_secret_key
from volact.core.policy import CLOCK_SKEW_TOLERANCE, COUNT_WINDOW, GroupPolicy
from volact.core.protocol import ActivationRequest
from volact.core.states import State
from volact.core.tickets import ISSUER_HOST, ISSUER_VENDOR, Activation, HostCertificate, Ticket

T0 = 1_700_000_000
VENDOR = "acme"
GROUP = "office-2026"
PRODUCT = "writer-2026"
GVLK = make_gvlk(VENDOR, GROUP, PRODUCT).text
MAK = make_secret_key(Channel.MAK, bytes(12)).text


def cmid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def fingerprint(n: int) -> str:
    return f"{n:064x}"


# --- the client machine ---------------------------------------------------------------------


class ClientLifecycle(RuleBasedStateMachine):
    """One installed product whose clock, host and user do random things."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.serial = 0
        self.record: cm.ClientRecord | None = None
        self.held_until: int | None = None  # valid-until of the held activation, if any
        self.holding = False

    def _fresh(self) -> int:
        self.serial += 1
        return self.serial

    @property
    def client(self) -> cm.ClientRecord:
        assert self.record is not None
        return self.record

    @initialize(
        oob_days=st.sampled_from([0, 1, 30, 180]),
        use_mak=st.booleans(),
        rearm_limit=st.sampled_from([0, 2, 5]),
    )
    def install(self, oob_days: int, use_mak: bool, rearm_limit: int) -> None:
        descriptor = ProductDescriptor(
            vendor_id=VENDOR,
            vendor_name="Acme",
            root_keys=("k4.public.unused",),
            product=PRODUCT,
            product_name="Writer",
            group=GROUP,
            gvlk=GVLK,
            oob_grace=oob_days * DAY,
            rearm_limit=rearm_limit,
        )
        self.record = cm.install_key(
            descriptor,
            MAK if use_mak else GVLK,
            cmid=cmid(0),
            fingerprint=fingerprint(0),
            now=self.now,
        )

    @rule(
        seconds=st.one_of(
            st.integers(0, 3 * HOUR), st.integers(0, 10 * DAY), st.integers(0, 200 * DAY)
        ),
        write_state=st.booleans(),
    )
    def time_passes(self, seconds: int, write_state: bool) -> None:
        self.now += seconds
        self.record = (cm.observe if write_state else cm.advance)(self.client, self.now)

    @rule(
        boundary=st.sampled_from(["valid_until", "grace_ends_at", "next_attempt_at"]),
        offset=st.integers(-1, 1),
        write_state=st.booleans(),
    )
    def time_reaches_a_boundary(self, boundary: str, offset: int, write_state: bool) -> None:
        """Jump next to a boundary (valid-until, a grace's end, the next attempt), where
        off-by-one mistakes live."""
        moment = getattr(cm.status(self.client, self.now), boundary)
        if moment is not None and moment + offset >= self.now:
            self.now = moment + offset
        self.record = (cm.observe if write_state else cm.advance)(self.client, self.now)

    @rule(seconds=st.integers(1, 3 * DAY))
    def clock_goes_back(self, seconds: int) -> None:
        self.now -= seconds

    @rule(
        validity_days=st.sampled_from([1, 7, 30, 180, 730, None]),
        host_skew=st.integers(-CLOCK_SKEW_TOLERANCE, CLOCK_SKEW_TOLERANCE),
        renewal_interval=st.sampled_from([15 * MINUTE, 7 * DAY, 30 * DAY]),
    )
    def activation_succeeds(
        self, validity_days: int | None, host_skew: int, renewal_interval: int
    ) -> None:
        record = self.client
        issued_at = max(0, self.now + host_skew)
        ticket = Ticket(
            issuer=ISSUER_VENDOR if validity_days is None else ISSUER_HOST,
            issuer_id="host-1",
            product=PRODUCT,
            group=GROUP,
            cmid=record.cmid,
            fingerprint=record.fingerprint,
            issued_at=issued_at,
            valid_until=None if validity_days is None else issued_at + validity_days * DAY,
            renewal_interval=renewal_interval,
            retry_interval=2 * HOUR,
            oot_grace=30 * DAY,
            count=5,
            threshold=5,
            nonce="bm9uY2Vub25jZW5vbmNl",
            token=f"v4.public.ticket{self._fresh()}.e30",
        )
        held = record.activation
        if held is not None and held.issued_at - CLOCK_SKEW_TOLERANCE > min(issued_at, self.now):
            self.holding = False  # rule 4's exception: the clocks went back, the new one counts
        self.record = cm.record_activation(record, Activation(ticket, None), self.now)
        assert self.record.phase in (State.LICENSED, State.OOT_GRACE, State.NOTIFICATION)
        assert not self.record.tampered

    @rule(
        code=st.sampled_from(["count_insufficient", "host_unreachable", "no_host_found"]),
        retry=st.one_of(st.none(), st.integers(1, 60 * DAY)),
    )
    def activation_fails(self, code: str, retry: int | None) -> None:
        before = cm.advance(self.client, self.now)
        self.record = cm.record_failure(self.client, code, self.now, retry)
        assert (self.record.phase, self.record.reason) == (before.phase, before.reason)

    @rule()
    def user_rearms(self) -> None:
        try:
            self.record = cm.rearm(self.client, self.now, cmid(self._fresh()))
        except (RearmLimit, ClockTampered, BadRequest):
            return
        assert self.record.activation is None

    @rule()
    def image_is_cloned(self) -> None:
        self.record = cm.check_fingerprint(
            self.client, fingerprint(self._fresh()), self.now, cmid(self._fresh())
        )
        assert self.record.activation is None

    @precondition(lambda self: self.record is not None)
    @invariant()
    def never_licensed_past_valid_until(self) -> None:
        status = cm.status(self.client, self.now)
        if status.state is State.LICENSED:
            assert status.valid_until is None or self.now < status.valid_until
        assert (status.reason is None) == (status.state is not State.NOTIFICATION)
        assert status.next_attempt_at is None or status.next_attempt_at >= self.now

    @precondition(lambda self: self.record is not None)
    @invariant()
    def renewal_never_shortens_validity(self) -> None:
        record = self.client
        if record.activation is None:
            self.holding = False
            return
        if self.holding and self.held_until is None:
            assert record.valid_until is None
        elif self.holding and record.valid_until is not None:
            assert self.held_until is not None
            assert record.valid_until >= self.held_until
        self.holding = True
        self.held_until = record.valid_until

    @precondition(lambda self: self.record is not None)
    @invariant()
    def survives_the_state_file(self) -> None:
        data = json.loads(json.dumps(self.client.to_dict()))
        assert cm.ClientRecord.from_dict(data) == self.client


ClientLifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestClientLifecycle = ClientLifecycle.TestCase


# --- the host's count -----------------------------------------------------------------------


def _context(threshold: int) -> HostContext:
    certificate = HostCertificate(
        cert_id="cert-1",
        vendor_id=VENDOR,
        host_id="host-1",
        host_key="k4.public.host",
        customer="Contoso",
        key_serial="host-0001",
        groups={GROUP: GroupPolicy(threshold=threshold)},
        not_before=T0 - DAY,
        not_after=T0 + 730 * DAY,
        issued_at=T0 - DAY,
    )
    return HostContext(vendor_id=VENDOR, certificate=certificate)


class DictStore:
    """The smallest store: one row per CMID of one group."""

    def __init__(self) -> None:
        self.rows: dict[str, ClientRow] = {}

    def view(self, cmid_text: str, now: int) -> GroupView:
        count = sum(1 for row in self.rows.values() if row.counted_at(now))
        return GroupView(count=count, client=self.rows.get(cmid_text))

    def apply(self, write: ClientWrite) -> None:
        old = self.rows.get(write.cmid)
        self.rows[write.cmid] = ClientRow(
            cmid=write.cmid,
            group=write.group,
            fingerprint=write.fingerprint,
            blocked=False if old is None else old.blocked,
            first_seen=write.seen_at if old is None else old.first_seen,
            last_seen=write.seen_at,
        )

    def set_blocked(self, cmid_text: str, blocked: bool) -> None:
        if cmid_text in self.rows:
            self.rows[cmid_text] = replace(self.rows[cmid_text], blocked=blocked)

    def request(self, context: HostContext, cmid_text: str, now: int) -> Decision:
        request = ActivationRequest(
            product=PRODUCT,
            key=GVLK,
            cmid=cmid_text,
            fingerprint=fingerprint(1),
            machine="pc",
            client_time=now,
            nonce="bm9uY2Vub25jZW5vbmNl",
            state=State.OOB_GRACE,
        )
        decision = decide(request, GROUP, self.view(cmid_text, now), context, now)
        if decision.write is not None:
            self.apply(decision.write)
        return decision


operations = st.lists(
    st.tuples(
        st.sampled_from(["ask", "ask", "ask", "block", "unblock"]),
        st.integers(0, 11),  # which client
        st.one_of(
            st.just(0),
            st.integers(0, 2 * DAY),
            st.integers(0, 40 * DAY),
            st.sampled_from([COUNT_WINDOW - 1, COUNT_WINDOW, COUNT_WINDOW + 1]),
        ),
    ),
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(threshold=st.integers(1, 8), ops=operations)
def test_blocked_and_expired_clients_never_count(
    threshold: int, ops: list[tuple[str, int, int]]
) -> None:
    context = _context(threshold)
    store = DictStore()
    # An independent model: when each client last asked and was counted, and who is blocked.
    last_asked: dict[str, int] = {}
    blocked: set[str] = set()
    now = T0
    for action, who, wait in ops:
        now += wait
        name = cmid(who)
        if action != "ask":
            store.set_blocked(name, action == "block")
            if name in last_asked:
                (blocked.add if action == "block" else blocked.discard)(name)
            continue
        decision = store.request(context, name, now)
        if name in blocked:
            assert decision.outcome is Outcome.BLOCKED
            assert decision.write is None
            assert decision.ticket is None
        else:
            last_asked[name] = now
        counted = {
            other
            for other, at in last_asked.items()
            if other not in blocked and at >= now - COUNT_WINDOW
        }
        if name not in blocked:
            assert decision.count == len(counted)
            assert (decision.outcome is Outcome.ACTIVATED) == (len(counted) >= threshold)
            assert (decision.ticket is not None) == (decision.outcome is Outcome.ACTIVATED)
        else:
            assert decision.count == len(counted)


@settings(max_examples=60, deadline=None)
@given(
    threshold=st.integers(1, 12), repeats=st.lists(st.integers(0, 11), max_size=30), data=st.data()
)
def test_the_threshold_is_reached_at_the_nth_distinct_client(
    threshold: int, repeats: list[int], data: st.DataObject
) -> None:
    """Requests from distinct clients, with repeats mixed in: the first ticket goes to the
    request that brings the distinct count to the threshold, and every later request gets one."""
    order = data.draw(st.permutations(list(range(threshold + 3))))
    sequence: list[int] = []
    for position, who in enumerate(order):
        sequence.append(who)
        sequence.extend(r for r in repeats if r % (position + 2) == 0 and r in sequence)
    context = _context(threshold)
    store = DictStore()
    seen: set[int] = set()
    now = T0
    for who in sequence:
        now += 1
        seen.add(who)
        decision = store.request(context, cmid(who), now)
        assert decision.count == len(seen)
        expected = Outcome.ACTIVATED if len(seen) >= threshold else Outcome.BELOW_THRESHOLD
        assert decision.outcome is expected
