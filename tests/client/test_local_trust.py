"""What the client trusts locally (issue 16): a fast clock later corrected, state-file edits, and
tickets signed by the customer's own certified host key. The real host service and the real SDK,
in-process; the state file is edited the way a local administrator would edit it."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.factories import T0
from volact.client import HostUnreachable, InvalidTicket, License, NoHostFound, State
from volact.core.durations import DAY, HOUR, MINUTE
from volact.core.tickets import ISSUER_HOST, Ticket, issue_ticket

from .conftest import Clock, InProcessHost, World


def _client(world: World, name: str, clock: Clock, transport: Any = None) -> License:
    """A machine with its own clock (the host keeps the world's) and, optionally, network."""
    return License(
        world.descriptor,
        world.tmp / "machines" / name,
        transport=transport or world.network,
        dns=world.dns,
        clock=clock,
        random=random.Random(name),
        machine_id=f"machine-id-{name}",
    )


def _edit(lic: License, change: Any) -> None:
    path: Path = lic.state.product_path(lic.product)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# --- finding 1: a fast clock, corrected after an activation -----------------------------------


def test_a_fast_clock_corrected_after_an_activation_is_not_clock_tampered(world: World) -> None:
    world.add_host("h1:7688", threshold=1)  # the host's clock is the real one (T0)
    clock = Clock(T0)
    lic = _client(world, "dualboot", clock)
    lic.install_key()
    lic.configure(manual_host="h1")
    clock.now = T0 + HOUR  # the RTC in local time: an hour fast
    assert lic.activate().state is State.LICENSED
    clock.now = T0  # NTP corrects it
    status = lic.status()
    assert (status.state, status.reason) == (State.LICENSED, None)
    # A real rollback beyond the tolerance is still tampering.
    clock.now = T0 - DAY
    status = lic.status()
    assert (status.state, status.reason) == (State.NOTIFICATION, "clock_tampered")


def test_a_renewal_on_a_fast_clock_is_not_clock_tampered_once_corrected(world: World) -> None:
    world.add_host("h1:7688", threshold=1)
    clock = Clock(T0)
    lic = _client(world, "vm", clock)
    lic.install_key()
    lic.configure(manual_host="h1")
    lic.activate()
    world.clock.now = T0 + 5 * DAY
    clock.now = T0 + 5 * DAY + 3 * HOUR  # a resumed VM, three hours fast, renews
    lic.activate()
    clock.now = T0 + 5 * DAY + 30  # and catches up
    status = lic.status()
    assert (status.state, status.reason) == (State.LICENSED, None)


def test_a_failed_renewal_on_a_fast_clock_is_not_clock_tampered_once_corrected(
    world: World,
) -> None:
    # A dual-boot laptop away from the network: its renewal fails while the clock is two
    # hours fast (the failure is written, as is every write), then NTP corrects it.
    world.add_host("h1:7688", threshold=1)
    clock = Clock(T0)
    lic = _client(world, "laptop", clock)
    lic.install_key()
    lic.configure(manual_host="h1")
    lic.activate()
    clock.now = T0 + 8 * DAY + 2 * HOUR
    world.network.down.add("h1:7688")
    with pytest.raises(HostUnreachable):
        lic.activate()
    clock.now = T0 + 8 * DAY
    status = lic.status()
    assert (status.state, status.reason) == (State.LICENSED, None)
    # Beyond the accepted skew a step back is still tampering.
    clock.now = T0 + 8 * DAY + 2 * HOUR - 4 * HOUR - 11 * MINUTE
    assert lic.status().reason == "clock_tampered"


def test_a_key_installed_on_a_fast_clock_is_not_clock_tampered_once_corrected(
    world: World,
) -> None:
    clock = Clock(T0 + 2 * HOUR)  # first boot, before NTP
    lic = _client(world, "newpc", clock)
    lic.install_key()
    clock.now = T0
    status = lic.status()
    assert (status.state, status.reason) == (State.OOB_GRACE, None)


# --- finding 3: edits of the state file --------------------------------------------------------


def _activated(world: World, name: str = "pc1") -> License:
    world.add_host("h1:7688", threshold=1)
    lic = world.machine(name)
    lic.install_key()
    lic.configure(manual_host="h1")
    lic.activate()
    return lic


def test_lowering_trusted_time_in_the_state_file_does_not_hide_a_rolled_back_clock(
    world: World,
) -> None:
    lic = _activated(world)  # the ticket is issued at T0
    world.clock.now = T0 + 5 * DAY
    world.network.down.add("h1:7688")
    with pytest.raises(HostUnreachable):
        lic.activate()  # a failed renewal: the state file now trusts day 5

    def lower(data: dict[str, Any]) -> None:
        data["record"]["trusted_time"] = T0

    _edit(lic, lower)
    world.clock.now = T0 + 4 * DAY  # the clock rolled back one day
    status = lic.status()
    assert (status.state, status.reason) == (State.NOTIFICATION, "clock_tampered")


def test_no_edit_lowers_trusted_time_below_the_signed_ticket(world: World) -> None:
    lic = _activated(world)
    world.clock.now = T0 + 5 * DAY
    lic.activate()  # renewed: the held ticket is issued at day 5

    def lower_every_copy(data: dict[str, Any]) -> None:
        data["record"]["trusted_time"] = T0
        if "trusted_time" in data:
            data["trusted_time"] = T0

    _edit(lic, lower_every_copy)
    world.clock.now = T0 + 4 * DAY
    status = lic.status()
    assert (status.state, status.reason) == (State.NOTIFICATION, "clock_tampered")


def test_an_install_time_in_the_future_gives_no_extra_grace(world: World) -> None:
    lic = world.machine("pc1")
    lic.install_key()

    def ahead(data: dict[str, Any]) -> None:
        data["record"]["installed_at"] = T0 + 3650 * DAY

    _edit(lic, ahead)
    world.clock.now = T0 + DAY
    status = lic.status()
    assert status.state is State.OOB_GRACE and status.days_left == 29
    # Nor does the grace slide with the writes that follow (each one trusts a later now).
    world.clock.now = T0 + 20 * DAY
    with pytest.raises(NoHostFound):  # no host is set: the failure is recorded (a write)
        lic.activate()
    world.clock.now = T0 + 31 * DAY
    status = lic.status()
    assert (status.state, status.reason) == (State.NOTIFICATION, "oob_grace_expired")


def test_the_grace_length_comes_from_the_signed_descriptor(world: World) -> None:
    lic = world.machine("pc1")
    lic.install_key()

    def longer(data: dict[str, Any]) -> None:
        data["record"]["oob_grace"] = 180 * DAY

    _edit(lic, longer)
    status = lic.status()
    assert status.state is State.OOB_GRACE and status.days_left == 30
    world.clock.now = T0 + 31 * DAY
    assert lic.status().reason == "oob_grace_expired"


# --- finding 4: tickets signed by the customer's own host key ---------------------------------


class OwnKeyHost:
    """A host whose key the customer holds: it signs whatever ticket ``forge`` makes."""

    def __init__(self, host: InProcessHost, clock: Clock, **fields: Any) -> None:
        self.host_dir = host.host
        self.clock = clock
        self.fields = fields

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        certificate = self.host_dir.certificate
        policy = certificate.groups["office-2026"]
        now = self.clock.now
        ticket = Ticket(
            issuer=ISSUER_HOST,
            issuer_id=certificate.host_id,
            cert_id=certificate.cert_id,
            product=body["product"],
            group="office-2026",
            cmid=body["cmid"],
            fingerprint=body["fingerprint"],
            issued_at=now,
            valid_until=now + policy.validity,
            renewal_interval=policy.renewal_interval,
            retry_interval=policy.retry_interval,
            oot_grace=policy.oot_grace,
            count=policy.threshold,
            threshold=policy.threshold,
            nonce=body["nonce"],
        )
        forged = replace(ticket, **self.fields)
        if "issued_at" in self.fields:
            forged = replace(forged, valid_until=forged.issued_at + policy.validity)
        signed = issue_ticket(self.host_dir.signer, forged)
        return {"ticket": signed.token, "host_certificate": certificate.token}


def _with_own_key_host(world: World, name: str, **fields: Any) -> License:
    host = world.add_host(f"{name}-host:7688", threshold=5)
    lic = _client(world, name, world.clock, OwnKeyHost(host, world.clock, **fields))
    lic.install_key()
    lic.configure(manual_host=f"{name}-host")
    return lic


def test_a_ticket_the_own_key_signs_honestly_activates(world: World) -> None:
    # The control: the forging host works, so the refusals below are the checks' doing.
    assert _with_own_key_host(world, "honest").activate().state is State.LICENSED


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("few", {"count": 1}),  # count below the certificate's threshold of 5
        ("lower", {"count": 1, "threshold": 1}),  # a threshold the vendor did not sign
        ("future", {"issued_at": T0 + 500 * DAY}),  # issued 500 days in the client's future
        ("skewed", {"issued_at": T0 + 4 * HOUR + 60}),  # just past the accepted skew
    ],
)
def test_a_ticket_the_own_key_signs_outside_the_certificate_is_refused(
    world: World, name: str, fields: dict[str, Any]
) -> None:
    lic = _with_own_key_host(world, name, **fields)
    with pytest.raises(InvalidTicket):
        lic.activate()
    status = lic.status()
    assert (status.state, status.last_error) == (State.OOB_GRACE, "invalid_ticket")


def test_a_ticket_within_the_skew_is_accepted(world: World) -> None:
    lic = _with_own_key_host(world, "near", issued_at=T0 + 3 * HOUR)
    assert lic.activate().state is State.LICENSED


def test_a_state_file_without_the_second_copy_is_read_with_the_record_s(world: World) -> None:
    lic = _activated(world)  # as an earlier volact wrote it: no top-level trusted_time

    def earlier_volact(data: dict[str, Any]) -> None:
        data.pop("trusted_time", None)

    _edit(lic, earlier_volact)
    assert lic.status().state is State.LICENSED
    world.clock.now = T0 + DAY
    lic.activate()  # the next write adds the copy
    path = lic.state.product_path(lic.product)
    data = json.loads(path.read_text())
    assert data["trusted_time"] == data["record"]["trusted_time"] == T0 + DAY


def test_a_success_after_the_clocks_went_back_is_never_clock_tampered(world: World) -> None:
    lic = _activated(world)
    world.clock.now = T0 + 10 * DAY
    lic.activate()  # held: issued at day 10
    world.clock.now = T0 + 5 * DAY  # the host's clock and the client's, both set back
    status = lic.activate()  # a signed success at day 5: the newer ticket is the one trusted
    assert (status.state, status.reason) == (State.LICENSED, None)
    assert lic.status().reason is None
