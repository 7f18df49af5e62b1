"""The License SDK against the real host service in-process (fake network, fake DNS, clock)."""

from __future__ import annotations

import json
import os
import random

import pytest

from tests.factories import T0, Vendor
from volact.client import (
    BadRequest,
    ClientBlocked,
    ClockTampered,
    CountInsufficient,
    HostUnreachable,
    InvalidHostCertificate,
    InvalidKey,
    License,
    NoHostFound,
    NotInstalled,
    RearmLimit,
    State,
    TimeSkew,
    installed_products,
)
from volact.client.discovery import StaticDNS
from volact.core import keys
from volact.core.durations import DAY, HOUR
from volact.core.srv import SRVRecord

from .conftest import World, run_sync


def test_a_new_machine_is_unlicensed_then_in_oob_grace(world: World) -> None:
    lic = world.machine("pc1")
    first = lic.status()
    assert (first.state, first.reason, first.valid_until, first.cmid) == (
        State.UNLICENSED,
        None,
        None,
        None,
    )
    installed = lic.install_key()
    assert installed.state is State.OOB_GRACE
    assert installed.grace_ends_at is not None
    assert installed.grace_ends_at.timestamp() == T0 + 30 * DAY
    assert installed.days_left == 30
    assert installed.partial_key == world.descriptor.gvlk[-5:]
    assert installed.channel == "gvlk"
    assert installed.next_attempt_at is not None  # a new install tries at once
    assert installed.next_attempt_at.timestamp() == T0


def test_threshold_count_insufficient_then_everyone_activates(world: World) -> None:
    world.add_host("h1.corp.example:7688", threshold=3)
    machines = [world.machine(f"pc{n}") for n in range(1, 4)]
    for lic in machines:
        lic.install_key()
        lic.configure(manual_host="h1.corp.example:7688")  # each machine has its own settings

    for n, lic in enumerate(machines[:2], start=1):
        with pytest.raises(CountInsufficient) as caught:
            lic.activate()
        error = caught.value
        assert error.code == "count_insufficient"
        assert (error.details["count"], error.details["threshold"]) == (n, 3)
        assert error.details["retry_interval"] == 2 * HOUR
        assert str(error) == f"{n} of 3 clients so far; will retry in 2 hours"
        status = lic.status()
        assert status.state is State.OOB_GRACE
        assert status.last_error == "count_insufficient"
        assert status.next_attempt_at is not None
        assert status.next_attempt_at.timestamp() == T0 + 2 * HOUR

    third = machines[2].activate()
    assert third.state is State.LICENSED
    assert third.valid_until is not None and third.valid_until.timestamp() == T0 + 180 * DAY
    assert third.host == "h1.corp.example:7688" and third.host_id == "host-1"
    for lic in machines[:2]:
        assert lic.activate().state is State.LICENSED


def test_renewal_moves_valid_until_and_validity_follows_the_host_clock(world: World) -> None:
    world.add_host("h1:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="h1")
    assert lic.activate().valid_until.timestamp() == T0 + 180 * DAY  # type: ignore[union-attr]
    world.clock.advance(8 * DAY)
    renewed = lic.activate()
    assert renewed.valid_until is not None
    assert renewed.valid_until.timestamp() == T0 + 188 * DAY
    assert renewed.next_attempt_at is not None
    assert renewed.next_attempt_at.timestamp() == T0 + 15 * DAY  # renewal interval 7 days


def test_grace_periods_without_a_host(world: World) -> None:
    world.add_host("h1:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="h1")
    lic.activate()
    world.network.down.add("h1:7688")
    world.clock.now = T0 + 200 * DAY
    with pytest.raises(HostUnreachable):
        lic.activate()
    status = lic.status()
    assert (status.state, status.reason) == (State.OOT_GRACE, None)
    assert status.grace_ends_at is not None
    assert status.grace_ends_at.timestamp() == T0 + 210 * DAY
    world.clock.now = T0 + 225 * DAY
    assert (lic.status().state, lic.status().reason) == (State.NOTIFICATION, "oot_grace_expired")

    never = world.machine("pc2")
    world.clock.now = T0
    never.install_key()
    world.clock.now = T0 + 31 * DAY
    assert (never.status().state, never.status().reason) == (
        State.NOTIFICATION,
        "oob_grace_expired",
    )


def test_a_clock_set_back_is_clock_tampered_until_the_next_activation(world: World) -> None:
    world.add_host("h1:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="h1")
    world.clock.now = T0 + 5 * DAY
    lic.activate()
    world.clock.now = T0 + 2 * DAY
    status = lic.status()
    assert (status.state, status.reason) == (State.NOTIFICATION, "clock_tampered")
    with pytest.raises(ClockTampered):
        lic.rearm()
    # An attempt while tampered makes it stick (written) even when the clock is right again.
    world.network.down.add("h1:7688")
    with pytest.raises(HostUnreachable):
        lic.activate()
    world.clock.now = T0 + 6 * DAY
    assert lic.status().reason == "clock_tampered"
    world.network.down.clear()
    assert lic.activate().state is State.LICENSED


def test_a_host_of_another_vendor_is_refused_and_the_state_is_unchanged(world: World) -> None:
    world.add_host("rogue:7688", vendor=Vendor(), threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="rogue")
    before = lic.stored()
    with pytest.raises(InvalidHostCertificate) as caught:
        lic.activate()
    assert caught.value.code == "invalid_host_certificate"
    assert "rogue:7688" in str(caught.value)
    after = lic.stored()
    assert after is not None and before is not None
    assert after.record.activation is None and after.record.phase is State.OOB_GRACE
    assert after.record.cmid == before.record.cmid
    assert after.cached_host is None  # a rogue host is never remembered
    assert lic.status().state is State.OOB_GRACE


def test_discovery_skips_a_rogue_host_and_caches_the_genuine_one(world: World) -> None:
    world.add_host("rogue.corp.example:7688", vendor=Vendor(), threshold=1)
    world.add_host("good.corp.example:7688", threshold=1)
    dns = StaticDNS(
        records={
            "_volact._tcp.corp.example": [
                SRVRecord(0, 0, 7688, "rogue.corp.example"),
                SRVRecord(10, 0, 7688, "good.corp.example"),
            ]
        },
        search=["corp.example"],
    )
    lic = world.machine("pc1", dns=dns)
    lic.install_key()
    status = lic.activate()
    assert status.state is State.LICENSED and status.host == "good.corp.example:7688"
    assert world.network.asked == ["rogue.corp.example:7688", "good.corp.example:7688"]
    assert lic.stored().cached_host == "good.corp.example:7688"  # type: ignore[union-attr]

    # The cached host comes first next time: no DNS query at all.
    dns.asked.clear()
    world.network.asked.clear()
    world.clock.advance(7 * DAY)
    lic.activate()
    assert dns.asked == [] and world.network.asked == ["good.corp.example:7688"]

    # With host caching off, DNS is asked again.
    lic.configure(host_caching=False)
    lic.activate()
    assert dns.asked == ["_volact._tcp.corp.example"]


def test_no_host_found_names_what_was_queried(world: World) -> None:
    lic = world.machine("pc1", dns=StaticDNS(search=["corp.example"]))
    lic.install_key()
    with pytest.raises(NoHostFound) as caught:
        lic.activate()
    assert "_volact._tcp.corp.example" in str(caught.value)
    assert "will retry in 2 hours" in str(caught.value)
    assert lic.status().last_error == "no_host_found"


def test_diagnose_shows_queries_hosts_and_a_verdict(world: World) -> None:
    world.add_host("good.corp.example:7688", threshold=1)
    dns = StaticDNS(
        records={
            "_volact._tcp.b.example": [SRVRecord(0, 0, 7688, "good.corp.example")],
            "_volact._tcp.c.example": [SRVRecord(0, 0, 7688, "other.c.example")],
        },
        outcomes={"_volact._tcp.a.example": "timeout"},
    )
    lic = world.machine("pc1", dns=dns)
    lic.install_key()
    lic.configure(domains=["a.example", "b.example", "c.example"])
    world.network.down.add("good.corp.example:7688")
    failed = lic.diagnose(activate=True)
    assert not failed.ok
    text = "\n".join(failed.lines)
    assert "SRV _volact._tcp.a.example: timed out" in text
    assert "SRV _volact._tcp.b.example: 1 record" in text
    assert "tried good.corp.example:7688: unreachable" in text
    assert "tried other.c.example:7688: unreachable" in text
    assert failed.verdict.startswith("FAILED: host_unreachable:")
    assert "Remedy:" in failed.verdict
    # The remedy is the one for the kind of failure: the last host refused the connection.
    assert "nothing accepts connections at other.c.example:7688" in failed.verdict
    world.network.down.clear()
    ok = lic.diagnose(activate=True)
    assert ok.ok and ok.verdict.startswith("OK: activated by good.corp.example:7688")
    assert json.dumps(ok.to_dict())  # JSON-able


def test_diagnose_is_read_only_by_default(world: World) -> None:
    host = world.add_host("good.corp.example:7688", threshold=1)
    dns = StaticDNS(
        records={"_volact._tcp.b.example": [SRVRecord(0, 0, 7688, "good.corp.example")]}
    )
    lic = world.machine("pc1", dns=dns)
    lic.install_key()
    lic.configure(domains=["b.example"])
    before = lic.status().to_dict()
    checked = lic.diagnose()
    assert checked.ok and checked.read_only
    assert checked.verdict.startswith("OK: good.corp.example:7688 answers; nothing was activated")
    assert "--activate" in checked.verdict
    text = "\n".join(checked.lines)
    assert "mode: read-only" in text and "SRV _volact._tcp.b.example: 1 record" in text
    assert "serves group" in text and "activated yes" in text
    # Nothing changed: not on the machine (no attempt, the same next retry), not at the host.
    assert lic.status().to_dict() == before
    assert run_sync(host.service.store.clients()) == []
    assert checked.to_dict()["mode"] == "read-only"


def test_a_tampered_state_file_does_not_count(world: World) -> None:
    world.add_host("h1:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="h1")
    lic.activate()
    path = lic.state.product_path(lic.product)
    data = json.loads(path.read_text())
    data["record"]["activation"]["valid_until"] += 365 * DAY  # stretch the validity
    path.write_text(json.dumps(data))
    status = lic.status()
    assert status.state is State.OOB_GRACE
    assert status.reason == "invalid_ticket"
    assert status.activation_error is not None

    data["record"]["activation"]["valid_until"] -= 365 * DAY
    ticket = data["record"]["activation"]["ticket"]
    data["record"]["activation"]["ticket"] = (
        ticket[:40] + ("A" if ticket[40] != "A" else "B") + (ticket[41:])
    )
    path.write_text(json.dumps(data))
    assert lic.status().reason == "invalid_ticket"

    # Past the OOB grace, the discarded activation leaves notification (the reason says why).
    world.clock.now = T0 + 40 * DAY
    status = lic.status()
    assert (status.state, status.reason) == (State.NOTIFICATION, "invalid_ticket")


def test_a_cloned_image_makes_a_new_cmid_by_itself(world: World) -> None:
    world.add_host("h1:7688", threshold=1)
    original = world.machine("pc1")
    original.install_key()
    original.configure(manual_host="h1")
    original.activate()
    old_cmid = original.status().cmid
    # The same state directory on a machine with another identity: a clone.
    clone = License(
        world.descriptor,
        original.state.directory,
        transport=world.network,
        clock=world.clock,
        machine_id="another-machine",
    )
    status = clone.status()
    assert status.cmid != old_cmid
    assert status.state is State.OOB_GRACE  # the ticket was for the original machine
    assert status.installed_at is not None and status.installed_at.timestamp() == T0
    stored = clone.stored()
    assert stored is not None and stored.record.cloned_from == (old_cmid,)
    assert clone.activate().state is State.LICENSED


def test_rearm_gives_a_new_cmid_and_grace_until_the_limit(world: World) -> None:
    vendor = world.vendor
    world.descriptor = vendor.descriptor(rearm_limit=1)
    lic = world.machine("pc1")
    lic.install_key()
    cmid = lic.status().cmid
    world.clock.now = T0 + 40 * DAY
    assert lic.status().state is State.NOTIFICATION
    rearmed = lic.rearm()
    assert rearmed.state is State.OOB_GRACE and rearmed.cmid != cmid
    assert rearmed.rearms_left == 0
    with pytest.raises(RearmLimit):
        lic.rearm()


def test_install_key_checks_the_key_and_replacing_it_drops_the_activation(world: World) -> None:
    lic = world.machine("pc1")
    with pytest.raises(InvalidKey):
        lic.install_key(Vendor().descriptor(product="other").gvlk)
    with pytest.raises(InvalidKey):
        lic.install_key("BV9CD-K4MK9-W73DC-QKQ38-RVBTQ")  # a typo
    with pytest.raises(NotInstalled):
        lic.activate()
    lic.install_key()
    cmid = lic.status().cmid
    mak = keys.make_secret_key(keys.Channel.MAK, os.urandom(12)).text
    status = lic.install_key(mak)
    assert (status.channel, status.cmid, status.partial_key) == ("mak", cmid, mak[-5:])
    path = lic.state.product_path(lic.product)
    assert path.stat().st_mode & 0o777 == 0o600  # a MAK is a secret
    with pytest.raises(BadRequest, match="online activation service"):
        lic.activate()


def test_settings_are_machine_wide_unless_a_product_overrides_them(world: World) -> None:
    writer = world.machine("pc1")
    writer.install_key()
    other_descriptor = world.vendor.descriptor(product="paint-2026")
    paint = License(other_descriptor, writer.state.directory, clock=world.clock, machine_id="x")
    paint.install_key()
    assert installed_products(writer.state.directory) == ["paint-2026", "writer-2026"]
    with pytest.raises(BadRequest, match="2 products are installed"):
        License.open(state_dir=writer.state.directory)

    writer.configure(manual_host="h1.example", product_only=True)
    assert writer.settings().manual_host == "h1.example:7688"
    assert paint.settings().manual_host is None
    paint.configure(manual_host="[::1]:8000")  # machine-wide: clears writer's override
    assert writer.settings().manual_host == "[::1]:8000"
    assert paint.settings().manual_host == "[::1]:8000"
    with pytest.raises(BadRequest):
        paint.configure(dns_server="dns.example")  # must be an IP address
    with pytest.raises(BadRequest):
        paint.configure(manual_host="h1.example:99999")
    settings = paint.configure(domains=["Corp.Example."], dns_server="127.0.0.1:5353")
    assert (settings.domains, settings.dns_server) == (("corp.example",), "127.0.0.1:5353")


def test_status_reads_without_writing(world: World) -> None:
    lic = world.machine("pc1")
    lic.install_key()
    path = lic.state.product_path(lic.product)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    for _ in range(3):
        lic.status()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_a_damaged_state_file_is_reported_plainly(world: World) -> None:
    lic = world.machine("pc1")
    lic.install_key()
    path = lic.state.product_path(lic.product)
    path.write_text("{not json")
    with pytest.raises(BadRequest, match="damaged"):
        lic.status()
    data = {"format": "volact-client-state", "v": 1, "record": {}, "extra": 1}
    path.write_text(json.dumps(data))
    with pytest.raises(BadRequest, match="damaged"):
        lic.status()
    lic.uninstall()
    assert lic.status().state is State.UNLICENSED


def test_from_descriptor_accepts_a_file_and_refuses_a_changed_one(world: World) -> None:
    path = world.tmp / "writer.json"
    path.write_text(world.descriptor.to_file())
    lic = License.from_descriptor(path, world.tmp / "m")
    assert lic.product == "writer-2026"
    assert License.from_descriptor(json.loads(path.read_text()), world.tmp / "m").product
    changed = json.loads(path.read_text())
    changed["token"] = changed["token"][:-3] + "AAA"
    with pytest.raises(BadRequest):
        License.from_descriptor(changed, world.tmp / "m")


def test_open_uses_the_descriptor_installed_with_the_key(world: World) -> None:
    world.add_host("h1:7688", threshold=1)
    lic = world.machine("pc1")
    with pytest.raises(NotInstalled):
        License.open(state_dir=lic.state.directory)
    lic.install_key()
    lic.configure(manual_host="h1")
    lic.activate()
    again = License.open(
        state_dir=lic.state.directory, clock=world.clock, machine_id="machine-id-pc1"
    )
    assert again.descriptor == world.descriptor
    status = again.status()
    assert (status.state, status.cmid) == (State.LICENSED, lic.status().cmid)
    with pytest.raises(NotInstalled, match="installed: writer-2026"):
        License.open("paint-2026", lic.state.directory)


def test_a_time_skew_refusal_does_not_make_the_wrong_clock_trusted(world: World) -> None:
    """A clock 5 hours ahead is refused by the host; once NTP corrects it, the client is fine."""
    world.add_host("h1:7688", threshold=1)
    offset = {"seconds": 0}

    def client_clock() -> int:
        return world.clock.now + offset["seconds"]

    lic = License(
        world.descriptor,
        world.tmp / "machines" / "skewed",
        transport=world.network,
        dns=world.dns,
        clock=client_clock,
        random=random.Random("skewed"),
        machine_id="machine-id-skewed",
    )
    lic.install_key()
    lic.configure(manual_host="h1")
    assert lic.activate().state is State.LICENSED
    world.clock.now += DAY
    offset["seconds"] = 5 * HOUR
    with pytest.raises(TimeSkew):
        lic.activate()
    offset["seconds"] = 0  # NTP fixed the clock
    status = lic.status()
    assert (status.state, status.reason) == (State.LICENSED, None)


def test_a_final_refusal_does_not_promise_a_retry(world: World) -> None:
    host = world.add_host("h1:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="h1")
    lic.activate()
    cmid = lic.status().cmid
    assert cmid is not None
    run_sync(host.service.store.block(cmid, world.clock.now))
    with pytest.raises(ClientBlocked) as info:
        lic.activate()
    assert "retry" not in info.value.message
