"""Short-lived host certificates and their renewal (issue 20): the vendor's lifetime policy,
renewal with proof of possession (refused for superseded, revoked or foreign requests), and a
host that keeps serving through a renewal, offline (files) and online (by itself, against a
real `volact vendor serve`)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path

import pytest

from tests.authority.helpers import World, issue_host_key, make_host, start_server, stop_server
from tests.client.conftest import run_sync
from tests.integration.helpers import Hosts, certify, machine
from volact import crypto
from volact.authority.operations import VIA_OFFLINE
from volact.core import host_renewal
from volact.core.durations import DAY
from volact.core.errors import BadRequest, HostRevoked, RateLimited, ReplayedRequest
from volact.host import certificate_renewal, certification
from volact.host.app import create_app
from volact.host.service import HostService
from volact.net.transport import ASGITransportAdapter
from volact.store import MemoryStore

POLL_LIMIT = 60.0


def _fulfil(world: World, text: str) -> str:
    with world.open() as vendor:
        return vendor.fulfil(text).response


def test_renewal_keeps_the_key_counts_nothing_and_ends_the_old_certificate(
    vendor_world: World, tmp_path: Path
) -> None:
    with vendor_world.open() as vendor:
        vendor.set_certificate_lifetime(90 * DAY)
    key = issue_host_key(vendor_world, hosts=1)
    files = make_host(tmp_path / "h", key)
    first = certify(vendor_world, files)
    request = certificate_renewal.write_renewal_request(files, now=int(time.time()))
    renewed = certification.install_host_response(
        files, _fulfil(vendor_world, request.to_file()), now=int(time.time())
    )
    assert renewed.cert_id != first
    assert renewed.not_after - renewed.issued_at == 90 * DAY
    assert renewed.host_key == files.signing_key().public_key.paserk
    with vendor_world.open() as vendor:
        serial = vendor.find_key(key).serial
        assert vendor.store.certifications_of_host(serial, renewed.host_id) == 1  # not counted
        assert vendor.find_key(key).used == 1
        old = vendor.store.certification(first)
        assert old is not None and (old["end_reason"], old["replaced_by"]) == (
            "renewed",
            renewed.cert_id,
        )
        assert vendor.revocation_list(key).certificates == ()  # a renewed certificate is not listed
        # The same request again: replayed. The old certificate again, early: it renewed
        # early already (a retry after a lost answer is answered once it is due).
        with pytest.raises(ReplayedRequest):
            vendor.renew_host(request.to_file(), via=VIA_OFFLINE)
    stale = host_renewal.sign_renewal_request(
        files.signing_key(),
        dataclasses.replace(request, request_id="8f1d3c0e-1111-4222-8333-444455556666"),
    )
    with vendor_world.open() as vendor, pytest.raises(RateLimited, match="renewed early"):
        vendor.renew_host(stale.to_file(), via=VIA_OFFLINE)


def test_renewal_needs_the_certified_key_and_a_live_certificate(
    vendor_world: World, tmp_path: Path
) -> None:
    key = issue_host_key(vendor_world, hosts=1)
    files = make_host(tmp_path / "h", key)
    cert_id = certify(vendor_world, files)
    # Signed by another key than the certificate names: no proof of possession.
    request = certificate_renewal.make_renewal_request(files, now=int(time.time()))
    forged = host_renewal.sign_renewal_request(crypto.SigningKey.generate(), request)
    with vendor_world.open() as vendor, pytest.raises(BadRequest, match="not signed by the key"):
        vendor.renew_host(forged.to_file(), via=VIA_OFFLINE)
    # A revoked certificate is not renewed.
    with vendor_world.open() as vendor:
        vendor.revoke_certificate(cert_id, "key_compromise")
        with pytest.raises(HostRevoked, match="revoked"):
            vendor.renew_host(request.to_file(), via=VIA_OFFLINE)


def test_a_host_keeps_serving_through_an_offline_renewal(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    key = issue_host_key(vendor_world, hosts=1)
    files = make_host(tmp_path / "h", key)
    first = certify(vendor_world, files)
    service = hosts.start("h:7688", files)
    before = machine(vendor_world, tmp_path, "pc1", hosts, "h:7688")
    assert before.activate().state == "licensed"
    request = certificate_renewal.write_renewal_request(files, now=int(time.time()))
    during = machine(vendor_world, tmp_path, "pc2", hosts, "h:7688")
    assert during.activate().state == "licensed"  # the request is out; the host still serves
    response = _fulfil(vendor_world, request.to_file())
    certification.install_host_response(files, response, now=int(time.time()))
    assert run_sync(service.check_for_new_certificate())
    after = machine(vendor_world, tmp_path, "pc3", hosts, "h:7688")
    assert after.activate().state == "licensed"
    held = after.stored()
    assert held is not None and held.record.activation is not None
    assert service.certificate_status.certificate is not None
    assert service.certificate_status.certificate.cert_id != first
    # Clients activated under the old certificate stay licensed.
    assert before.status().state == "licensed" and during.status().state == "licensed"


def _poll(condition: object, what: str) -> None:
    deadline = time.monotonic() + POLL_LIMIT
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_running_host_renews_online_by_itself_and_keeps_serving(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    with vendor_world.open() as vendor:
        vendor.set_certificate_lifetime(3 * DAY)
    key = issue_host_key(vendor_world, hosts=1)
    files = make_host(tmp_path / "h", key)
    first = certify(vendor_world, files)
    server = start_server(vendor_world, "--rate", "0")
    try:
        files.save_settings(dataclasses.replace(files.settings(), vendor_url=server.url))
        # The host's clock two and a half days on: two thirds of the 4-day life (3 days plus
        # the day of backdating) have passed, so a renewal is due.
        offset = int(2.5 * DAY)

        def later() -> int:
            return int(time.time()) + offset

        service = HostService.from_files(files, MemoryStore(), later, maintenance_interval=0)
        service.vendor_upkeep_interval = 0.05
        service.certificate_check_interval = 0
        # The service's own background tasks need a loop that keeps running: its own thread.
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(service.start(), loop).result(timeout=POLL_LIMIT)
        hosts.apps["h:7688"] = ASGITransportAdapter(create_app(service, rate_limit=0))

        def current() -> str | None:
            certificate = service.certificate_status.certificate
            return None if certificate is None else certificate.cert_id

        client = machine(vendor_world, tmp_path, "pc1", hosts, "h:7688")
        client.clock = later
        assert client.activate().state == "licensed"
        _poll(lambda: current() not in (None, first), "the host to renew its certificate")
        assert client.activate().state == "licensed"  # served by the renewed certificate
        assert any(line.get("message") == "host_renewed" for line in server.log_lines()), (
            server.log.read_text()
        )
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(timeout=POLL_LIMIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=POLL_LIMIT)
        loop.close()
    finally:
        stop_server(server)


def test_a_host_renews_early_once_so_its_revocation_stays_one_or_two_entries(
    vendor_world: World, tmp_path: Path
) -> None:
    """Revoking a host lists its unexpired renewed certificates too; so a renewal before it is
    due is allowed once per host lineage. Otherwise a host that renews in a loop (each
    renewal proves possession, nothing else limits it) would make the list of its
    revocation overflow the 256 entries, and no list could be signed for any customer."""
    key = issue_host_key(vendor_world, hosts=1)
    files = make_host(tmp_path / "h", key)
    certify(vendor_world, files)
    request = certificate_renewal.write_renewal_request(files, now=int(time.time()))
    renewed = certification.install_host_response(
        files, _fulfil(vendor_world, request.to_file()), now=int(time.time())
    )
    again = certificate_renewal.write_renewal_request(files, now=int(time.time()))
    with vendor_world.open() as vendor:
        with pytest.raises(RateLimited, match="then once it is due"):
            vendor.renew_host(again.to_file(), via=VIA_OFFLINE)
        listed = vendor.revoke_certificate(renewed.cert_id, "key_compromise")
    assert len(listed.certificates) == 2


def test_a_host_whose_renewal_answer_was_lost_renews_again_once(
    vendor_world: World, tmp_path: Path
) -> None:
    """The vendor ends the old certificate `renewed` when it answers; a host whose answer never
    arrived (network, crash before the file was written) still holds only the old one. Its
    retry is answered (once: the certificate it renewed to ends in turn), else the host could
    never renew again and would stop at its certificate's end."""
    from volact.authority.operations import Vendor
    from volact.core.tickets import verify_certificate

    key = issue_host_key(vendor_world, hosts=1)
    files = make_host(tmp_path / "h", key)
    certify(vendor_world, files)
    with vendor_world.open() as vendor:
        keys = [crypto.VerifyKey.from_paserk(k) for k in vendor.listed_root_keys()]
    current = verify_certificate(files.certificate_token(), keys, vendor_id="acme")
    due = host_renewal.due_at(current) + 60
    lost = certificate_renewal.make_renewal_request(files, now=due)
    with Vendor.open(vendor_world.path, clock=lambda: due) as vendor:
        vendor.renew_host(lost.to_file(), via=VIA_OFFLINE)  # answered; the answer never arrives
        retry = certificate_renewal.write_renewal_request(files, now=due)
        response = vendor.renew_host(retry.to_file(), via=VIA_OFFLINE).to_file()
        renewed = certification.install_host_response(files, response, now=due)
        assert renewed.cert_id != current.cert_id
        rows = {row["cert_id"]: row for row in vendor.store.certifications(renewed.key_serial)}
        assert [row["end_reason"] for row in rows.values()] == ["renewed", "renewed", None]
        # The old certificate once more: the one it was renewed to has ended; refused.
        again = host_renewal.sign_renewal_request(
            files.signing_key(),
            dataclasses.replace(lost, request_id="8f1d3c0e-1111-4222-8333-444455556666"),
        )
        with pytest.raises(HostRevoked, match="renewed"):
            vendor.renew_host(again.to_file(), via=VIA_OFFLINE)
        # An early renewal of the new one: a certificate it renewed is still valid.
        early = certificate_renewal.write_renewal_request(files, now=due)
        with pytest.raises(RateLimited):
            vendor.renew_host(early.to_file(), via=VIA_OFFLINE)
