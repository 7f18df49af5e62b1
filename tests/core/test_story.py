"""The whole story of SPEC §3–§4, played by five client machines and one host in virtual time.

The pieces are the real core: the vendor signs a product descriptor and certifies the host
(:mod:`volact.core.descriptor`, :mod:`volact.core.tickets`); the host parses each request body
(:mod:`volact.core.protocol`), routes and decides (:mod:`volact.core.host_machine`) over a small
dict store and signs the ticket; each client builds its request from its
:mod:`~volact.core.client_machine` record, verifies the answer's whole chain with
``verify_activation`` exactly as the SDK will, and records the outcome. A fake link carries JSON
between them and can be cut. A year and a half passes in well under a second.

The story: five clients, threshold five. Clients 1–4 ask and are told ``count_insufficient``;
the 5th is activated; 1–4 are activated at their next retry two hours later. Tickets are valid
for 180 days and renewed every 7, so all stay licensed for a year. Then the host goes away: the
clients retry every two hours, fall to ``oot_grace`` at valid-until and to ``notification`` 30
days later. The host comes back and they are licensed again.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from volact import crypto
from volact.core import client_machine as cm
from volact.core.descriptor import ProductDescriptor, load_descriptor, sign_descriptor
from volact.core.durations import DAY, HOUR, MINUTE
from volact.core.errors import HostUnreachable, VolactError, error_body, error_from_code
from volact.core.host_machine import (
    ClientRow,
    ClientWrite,
    GroupView,
    HostContext,
    Outcome,
    decide,
    refused,
    route,
)
from volact.core.keys import make_gvlk
from volact.core.policy import GroupPolicy
from volact.core.protocol import ActivationRequest, parse_activation_request
from volact.core.states import State
from volact.core.tickets import (
    HostCertificate,
    issue_certificate,
    issue_ticket,
    verify_activation,
)

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
VENDOR = "acme"
GROUP = "office-2026"
PRODUCT = "writer-2026"
CLIENTS = 5


# --- the host -------------------------------------------------------------------------------


class StoryHost:
    """A host: the pure decision, a dict store, a signing key. It answers JSON with JSON."""

    def __init__(self, context: HostContext, key: crypto.SigningKey) -> None:
        self.context = context
        self.key = key
        self.rows: dict[tuple[str, str], ClientRow] = {}
        self.answers: list[tuple[int, str, Outcome, int]] = []  # (now, cmid, outcome, count)

    def _view(self, group: str, cmid: str, now: int) -> GroupView:
        count = sum(1 for (g, _), row in self.rows.items() if g == group and row.counted_at(now))
        return GroupView(count=count, client=self.rows.get((group, cmid)))

    def _write(self, write: ClientWrite) -> None:
        old = self.rows.get((write.group, write.cmid))
        self.rows[(write.group, write.cmid)] = ClientRow(
            cmid=write.cmid,
            group=write.group,
            fingerprint=write.fingerprint,
            blocked=False if old is None else old.blocked,
            first_seen=write.seen_at if old is None else old.first_seen,
            last_seen=write.seen_at,
        )

    def handle(self, body: Any, now: int) -> dict[str, Any]:
        try:
            request = parse_activation_request(body)
        except VolactError as exc:
            return error_body(exc)
        routed = route(request, self.context, now)
        if routed.outcome is not None:
            decision = refused(request, routed, now)
        else:
            assert routed.group is not None
            view = self._view(routed.group, request.cmid, now)
            decision = decide(request, routed.group, view, self.context, now)
        if decision.write is not None:
            self._write(decision.write)  # "committed" before the ticket is signed
        self.answers.append((now, request.cmid, decision.outcome, decision.count))
        if decision.ticket is None:
            assert decision.code is not None
            details = {"count": decision.count, "threshold": decision.threshold}
            return error_body(error_from_code(decision.code, decision.message, details))
        assert self.context.certificate is not None
        return {
            "ok": True,
            "ticket": issue_ticket(self.key, decision.ticket).token,
            "host_certificate": self.context.certificate.token,
            "count": decision.count,
            "threshold": decision.threshold,
        }


@dataclass
class Link:
    """The network between clients and the host: JSON both ways, and a switch."""

    host: StoryHost
    up: bool = True

    def post(self, body: dict[str, Any], now: int) -> dict[str, Any]:
        if not self.up:
            raise HostUnreachable("no host answered")
        answer = self.host.handle(json.loads(json.dumps(body)), now)
        return json.loads(json.dumps(answer))


# --- the clients ----------------------------------------------------------------------------


def _through_the_state_file(record: cm.ClientRecord) -> cm.ClientRecord:
    return cm.ClientRecord.from_dict(json.loads(json.dumps(record.to_dict())))


@dataclass
class StoryClient:
    """What the SDK does around the pure machine: build requests, verify, record, persist."""

    name: str
    descriptor: ProductDescriptor
    record: cm.ClientRecord
    rng: random.Random
    attempts: list[tuple[int, str | None]] = field(default_factory=list)  # (now, error code)
    valid_untils: list[int] = field(default_factory=list)

    def attempt(self, link: Link, now: int) -> None:
        nonce = base64.urlsafe_b64encode(self.rng.randbytes(16)).rstrip(b"=").decode()
        request = ActivationRequest(
            product=self.record.product,
            key=self.record.key,
            cmid=self.record.cmid,
            fingerprint=self.record.fingerprint,
            machine=self.name,
            client_time=now,
            nonce=nonce,
            state=cm.request_state(self.record, now),
        )
        try:
            answer = link.post(request.to_json(), now)
        except VolactError as exc:
            self.record = cm.record_failure(self.record, exc.code, now)
            self.attempts.append((now, exc.code))
        else:
            if answer["ok"]:
                activation = verify_activation(
                    self.descriptor,
                    answer["ticket"],
                    answer["host_certificate"],
                    cmid=self.record.cmid,
                    fingerprint=self.record.fingerprint,
                    nonce=nonce,
                )
                self.record = cm.record_activation(self.record, activation, now)
                assert self.record.valid_until is not None
                self.valid_untils.append(self.record.valid_until)
                self.attempts.append((now, None))
            else:
                code = answer["error"]["code"]
                self.record = cm.record_failure(self.record, code, now)
                self.attempts.append((now, code))
        # The SDK writes the state file after every attempt. Here the record goes through its
        # JSON form after each success and at each status check (doing it for every one of the
        # thousands of failed retries would only slow the story down).
        self.record = cm.observe(self.record, now)
        if self.attempts[-1][1] is None:
            self.record = _through_the_state_file(self.record)

    def status(self, now: int) -> cm.Status:
        """As ``License.status()``: read the state file, re-verify the held ticket offline,
        then compute."""
        self.record = _through_the_state_file(self.record)
        held = self.record.activation
        if held is not None:
            verified = verify_activation(
                self.descriptor,
                held.ticket,
                held.certificate,
                cmid=self.record.cmid,
                fingerprint=self.record.fingerprint,
            )
            cm.check_stored_activation(self.record, verified)
        return cm.status(self.record, now)


# --- the world ------------------------------------------------------------------------------


class World:
    def __init__(self, seed: int = 2026) -> None:
        rng = random.Random(seed)
        root = crypto.SigningKey.generate()
        host_key = crypto.SigningKey.generate()
        signed = sign_descriptor(
            root,
            ProductDescriptor(
                vendor_id=VENDOR,
                vendor_name="Acme Software",
                root_keys=(root.public_key.paserk,),
                product=PRODUCT,
                product_name="Writer 2026",
                group=GROUP,
                gvlk=make_gvlk(VENDOR, GROUP, PRODUCT).text,
            ),
        )
        self.descriptor = load_descriptor(signed.to_file())  # as the app reads its file
        certificate = issue_certificate(
            root,
            HostCertificate(
                cert_id="cert-0001",
                vendor_id=VENDOR,
                host_id="host-contoso-1",
                host_key=host_key.public_key.paserk,
                customer="Contoso",
                key_serial="host-0001",
                groups={GROUP: GroupPolicy()},
                not_before=T0 - DAY,
                not_after=T0 + 730 * DAY,
                issued_at=T0 - DAY,
            ),
        )
        self.host = StoryHost(HostContext(vendor_id=VENDOR, certificate=certificate), host_key)
        self.link = Link(self.host)
        self.now = T0
        self.rng = rng
        self.clients: list[StoryClient] = []

    def install(self) -> StoryClient:
        """A new machine installs the product now (``volact client install-key``)."""
        n = len(self.clients) + 1
        record = cm.install_key(
            self.descriptor,
            self.descriptor.gvlk,
            cmid=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            fingerprint=hashlib.sha256(f"machine-{n}:{PRODUCT}".encode()).hexdigest(),
            now=self.now,
        )
        client = StoryClient(f"pc-{n}", self.descriptor, record, random.Random(self.rng.random()))
        self.clients.append(client)
        return client

    def run_until(self, end: int, check: Callable[[int], None] | None = None) -> None:
        """Let every client attempt at its deadlines up to ``end``; ``check`` runs daily."""
        next_check = self.now + DAY
        for _ in range(100_000):  # a bound, far above what any step of the story needs
            deadlines = [
                (deadline, index)
                for index, client in enumerate(self.clients)
                if (deadline := cm.next_deadline(client.record, self.now)) is not None
            ]
            due, index = min(deadlines, default=(end + 1, -1))
            if check is not None and next_check <= min(due, end):
                self.now = next_check
                check(self.now)
                next_check += DAY
                continue
            if due > end:
                self.now = end
                return
            self.now = due
            self.clients[index].attempt(self.link, self.now)
        raise AssertionError("the story did not reach its end")

    def states(self, now: int) -> list[State]:
        return [client.status(now).state for client in self.clients]


def test_the_whole_story() -> None:
    world = World()

    # Day 0: five machines install the product a minute apart; each asks at once. The first
    # four are below the threshold, the fifth is activated.
    for n in range(CLIENTS):
        world.run_until(T0 + n * MINUTE)
        world.install()
    first, fifth = world.clients[0], world.clients[4]
    world.run_until(T0 + 10 * MINUTE)
    assert [(outcome, count) for _, _, outcome, count in world.host.answers] == [
        (Outcome.BELOW_THRESHOLD, 1),
        (Outcome.BELOW_THRESHOLD, 2),
        (Outcome.BELOW_THRESHOLD, 3),
        (Outcome.BELOW_THRESHOLD, 4),
        (Outcome.ACTIVATED, 5),
    ]
    assert world.states(world.now) == [State.OOB_GRACE] * 4 + [State.LICENSED]
    assert first.record.last_error == "count_insufficient"
    assert first.status(world.now).next_attempt_at == T0 + 2 * HOUR
    assert fifth.status(world.now).valid_until == T0 + 4 * MINUTE + 180 * DAY

    # Two hours later, clients 1–4 retry and are activated (the count is already five).
    world.run_until(T0 + 2 * HOUR + 10 * MINUTE)
    assert world.states(world.now) == [State.LICENSED] * CLIENTS
    for n, client in enumerate(world.clients[:4]):
        assert client.attempts == [
            (T0 + n * MINUTE, "count_insufficient"),
            (T0 + n * MINUTE + 2 * HOUR, None),
        ]
        assert client.record.valid_until == T0 + n * MINUTE + 2 * HOUR + 180 * DAY

    # A year of renewals every 7 days: licensed every day, validity always 180 days ahead.
    def licensed_every_day(now: int) -> None:
        for client in world.clients:
            status = cm.status(client.record, now)
            assert status.state is State.LICENSED
            assert status.valid_until is not None
            assert status.valid_until - now >= (180 - 7) * DAY
            assert not status.expiry_warning

    host_leaves = T0 + 365 * DAY
    world.run_until(host_leaves, check=licensed_every_day)
    assert world.states(world.now) == [State.LICENSED] * CLIENTS
    for client in world.clients:
        successes = [at for at, error in client.attempts if error is None]
        assert all(b - a == 7 * DAY for a, b in itertools.pairwise(successes))
        assert len(successes) >= 52
        assert client.valid_untils == sorted(client.valid_untils)
        assert client.record.valid_until == successes[-1] + 180 * DAY

    # The host goes away. The clients retry every 2 hours ...
    world.link.up = False
    valid_untils = [client.record.valid_until for client in world.clients]
    assert all(v is not None for v in valid_untils)
    world.run_until(min(v for v in valid_untils if v is not None) - 1)
    for client, valid_until in zip(world.clients, valid_untils, strict=True):
        assert valid_until is not None
        status = client.status(world.now)
        assert status.state is State.LICENSED
        assert status.expiry_warning
        failures = [at for at, error in client.attempts if error == "host_unreachable"]
        assert failures[0] == valid_until - 180 * DAY + 7 * DAY  # the first missed renewal
        assert all(b - a == 2 * HOUR for a, b in itertools.pairwise(failures))

    # ... fall to oot_grace at valid-until, and to notification 30 days later.
    ends = sorted(zip(valid_untils, world.clients, strict=True), key=lambda pair: pair[0] or 0)
    for valid_until, client in ends:
        assert valid_until is not None
        world.run_until(valid_until - 1)
        assert client.status(world.now).state is State.LICENSED
        world.run_until(valid_until)
        status = client.status(world.now)
        assert status.state is State.OOT_GRACE
        assert status.grace_ends_at == valid_until + 30 * DAY
    for valid_until, client in ends:
        assert valid_until is not None
        world.run_until(valid_until + 30 * DAY - 1)
        assert client.status(world.now).state is State.OOT_GRACE
        world.run_until(valid_until + 30 * DAY)
        status = client.status(world.now)
        assert (status.state, status.reason) == (State.NOTIFICATION, "oot_grace_expired")
        assert status.next_attempt_at is not None
        assert status.next_attempt_at - world.now <= 2 * HOUR
    for client in world.clients:
        failures = [at for at, error in client.attempts if error == "host_unreachable"]
        assert all(b - a == 2 * HOUR for a, b in itertools.pairwise(failures))

    # The host comes back. Nobody asked for months, so the count starts again from zero: the
    # first four to ask (each client asks once in every two hours) are below the threshold, the
    # fifth is activated, and the first four are activated at their next retry.
    world.run_until(T0 + 600 * DAY)
    world.link.up = True
    answers_before = len(world.host.answers)
    world.run_until(T0 + 600 * DAY + 4 * HOUR)
    outcomes = [outcome for _, _, outcome, _ in world.host.answers[answers_before:]]
    assert outcomes == [Outcome.BELOW_THRESHOLD] * 4 + [Outcome.ACTIVATED] * 5
    for client in world.clients:
        status = client.status(world.now)
        assert (status.state, status.reason) == (State.LICENSED, None)
        assert status.valid_until is not None
        assert status.valid_until > world.now + 179 * DAY
        assert status.next_attempt_at is not None
        assert status.next_attempt_at > world.now + 6 * DAY
