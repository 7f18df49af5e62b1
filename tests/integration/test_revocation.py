"""The revocation list end to end (issue 20), with the real vendor (authority), real host
certification, the real host service and app in-process, and the real client SDK.

A vendor revokes (or supersedes) a host; the list reaches one host of the customer (as a file
or from the vendor service); a client that meets that host learns the list, keeps it, and
refuses the revoked host from then on, also for the activation it already holds. An older
list never replaces a newer one, on the client or on the host.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from tests.authority.helpers import World, invoke, issue_host_key, make_host
from tests.client.conftest import run_sync
from tests.integration.helpers import Hosts, certify, machine
from volact.authority.service import create_app as create_vendor_app
from volact.client import revocations as client_revocations
from volact.core.keys import parse_key
from volact.core.revocation import revocation_file
from volact.host import revocations as host_revocations
from volact.host.identity import HostFiles
from volact.host.service import HostService
from volact.net.transport import ASGITransportAdapter


def install_on(files: HostFiles, service: HostService, token: str) -> None:
    host_revocations.install(files, revocation_file(token))
    assert run_sync(service.check_for_new_revocations())


def test_a_revoked_hosts_clients_refuse_it_after_meeting_an_updated_host(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    key = issue_host_key(vendor_world, hosts=2)
    a, b = make_host(tmp_path / "a", key), make_host(tmp_path / "b", key)
    cert_a = certify(vendor_world, a)
    certify(vendor_world, b)
    service_a, service_b = hosts.start("a:7688", a), hosts.start("b:7688", b)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "a:7688")
    assert client.activate().state == "licensed"

    with vendor_world.open() as vendor:
        revoked = vendor.revoke_certificate(cert_a, "key_compromise")
    install_on(b, service_b, revoked.token)  # only host b has the new list
    # Host a (the leaked one) knows nothing; the client still holds a's activation.
    assert client.status().state == "licensed"
    # The client meets host b once (a renewal) and learns the list from its answer.
    client.configure(manual_host="b:7688")
    assert client.activate().state == "licensed"
    held = client_revocations.held(client.state, client.descriptor, revoked.host_key)
    assert held is not None and held.sequence == revoked.sequence
    # Back to host a: refused with host_revoked, and the activation from b still counts.
    client.configure(manual_host="a:7688")
    attempt = client.renew()
    assert attempt.error is not None and attempt.error.code == "host_revoked"
    assert "key_compromise" in attempt.error.message
    assert client.status().state == "licensed"
    assert service_a.revocations is None  # host a never got the list; the client did


def test_an_activation_held_from_a_host_revoked_since_stops_counting(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    key = issue_host_key(vendor_world, hosts=2)
    a, b = make_host(tmp_path / "a", key), make_host(tmp_path / "b", key)
    cert_a = certify(vendor_world, a)
    certify(vendor_world, b)
    hosts.start("a:7688", a)
    service_b = hosts.start("b:7688", b)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "a:7688")
    client.activate()
    other = machine(vendor_world, tmp_path, "pc2", hosts, "b:7688")
    with vendor_world.open() as vendor:
        revoked = vendor.revoke_certificate(cert_a, "ceased")
    install_on(b, service_b, revoked.token)
    other.activate()  # pc2 meets b and learns the list (into its own state directory)
    learnt = client_revocations.held(other.state, other.descriptor, revoked.host_key)
    assert learnt is not None and learnt.sequence == revoked.sequence
    # pc1 shares nothing with pc2; give it the list as a host would (pc1 meets b too).
    client.configure(manual_host="b:7688")
    hosts.down.add("b:7688")
    client.renew()  # b unreachable: nothing learnt, a's activation still counts
    assert client.status().state == "licensed"
    hosts.down.clear()
    client_revocations.observe(client.state, client.descriptor, revoked.token, revoked.host_key)
    status = client.status()
    assert (status.state, status.reason) == ("oob_grace", "host_revoked")


def test_recertification_trick_gives_no_extra_working_host(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    """A second machine given host a's id: certified, it supersedes a; once a client has met
    the list, a's tickets are refused, so the key still yields one working host per id."""
    key = issue_host_key(vendor_world, hosts=1)
    a = make_host(tmp_path / "a", key)
    certify(vendor_world, a)
    clone = make_host(tmp_path / "clone", key)
    clone.save_settings(dataclasses.replace(clone.settings(), host_id=a.settings().host_id))
    certify(vendor_world, clone)  # a re-certification: supersedes a's certificate
    hosts.start("a:7688", a)
    hosts.start("clone:7688", clone)
    # The clone fetches the vendor's list online (the vendor service, in-process).
    with vendor_world.open() as vendor:
        service = ASGITransportAdapter(create_vendor_app(vendor))
        _, changed = host_revocations.fetch_online(
            clone, vendor_url="http://vendor.test", transport=service
        )
    assert changed
    assert run_sync(hosts.services["clone:7688"].check_for_new_revocations())
    client = machine(vendor_world, tmp_path, "pc1", hosts, "clone:7688")
    assert client.activate().state == "licensed"
    client.configure(manual_host="a:7688")
    attempt = client.renew()
    assert attempt.error is not None and attempt.error.code == "host_revoked"
    assert "superseded" in attempt.error.message


def test_an_older_list_never_replaces_a_newer_one(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    key = issue_host_key(vendor_world, hosts=3)
    a, b = make_host(tmp_path / "a", key), make_host(tmp_path / "b", key)
    cert_a = certify(vendor_world, a)
    certify(vendor_world, b)
    with vendor_world.open() as vendor:
        old = vendor.revocation_list(key)
        new = vendor.revoke_certificate(cert_a, "host_replaced")
    assert new.sequence > old.sequence
    # On the host: the newer list installed, then the older file changes nothing.
    host_revocations.install(b, revocation_file(new.token))
    kept, changed = host_revocations.install(b, revocation_file(old.token))
    assert (kept.sequence, changed) == (new.sequence, False)
    # On the client: a host that serves the old list cannot roll the client back.
    service_b = hosts.start("b:7688", b)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "b:7688")
    client_revocations.observe(client.state, client.descriptor, new.token, new.host_key)
    service_b._apply_revocations(host_revocations.verify(b, b.settings(), old.token))
    assert client.activate().state == "licensed"  # b is not revoked
    held = client_revocations.held(client.state, client.descriptor, new.host_key)
    assert held is not None and held.sequence == new.sequence
    # And a tampered list is ignored, never stored.
    forged = new.token[:-8] + ("A" * 8 if not new.token.endswith("A" * 8) else "B" * 8)
    assert client_revocations.observe(client.state, client.descriptor, forged, new.host_key) == held


def test_a_host_whose_own_certificate_is_listed_stops_activating(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    key = issue_host_key(vendor_world, hosts=1)
    a = make_host(tmp_path / "a", key)
    cert_a = certify(vendor_world, a)
    service = hosts.start("a:7688", a)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "a:7688")
    assert client.activate().state == "licensed"
    with vendor_world.open() as vendor:
        revoked = vendor.revoke_certificate(cert_a, "host_replaced")
    install_on(a, service, revoked.token)
    reason = service.certificate_status.explain(int(time.time()))
    assert "revoked this host's certificate (host_replaced" in reason
    other = machine(vendor_world, tmp_path, "pc2", hosts, "a:7688")
    attempt = other.renew()
    assert attempt.error is not None and attempt.error.code == "host_not_activated"


def test_host_status_shows_the_list_and_a_revoked_certificate(
    vendor_world: World, tmp_path: Path
) -> None:
    key = issue_host_key(vendor_world, hosts=1)
    a = make_host(tmp_path / "a", key)
    cert_a = certify(vendor_world, a)
    with vendor_world.open() as vendor:
        revoked = vendor.revoke_certificate(cert_a, "ceased")
    host_revocations.install(a, revocation_file(revoked.token))
    done = invoke("host", "status", "--dir", str(a.directory), "--json")
    data = json.loads(done.stdout)
    assert (
        data["activated"] is False and "revoked this host's certificate (ceased" in data["reason"]
    )
    assert data["revocations"]["sequence"] == revoked.sequence
    text = invoke("host", "status", "--dir", str(a.directory)).stdout
    assert f"Revocations:    list {revoked.sequence}" in text


def test_real_hosts_a_list_installed_by_file_reaches_clients(
    vendor_world: World, tmp_path: Path
) -> None:
    """Two real `volact host serve` processes; the list is installed on one with `volact host
    install-revocations` while it runs; a client (the SDK over HTTP) that meets it refuses the
    other, revoked one."""
    from tests.client.conftest import ServedProcess, clean_env
    from tests.ports import free_port
    from volact.client import License
    from volact.client.discovery import StaticDNS

    key = issue_host_key(vendor_world, hosts=2)
    a, b = make_host(tmp_path / "a", key), make_host(tmp_path / "b", key)
    cert_a = certify(vendor_world, a)
    certify(vendor_world, b)
    ports = {"a": free_port(), "b": free_port()}
    served = []
    try:
        for name, files in (("a", a), ("b", b)):
            process = ServedProcess(
                ["host", "serve", "--dir", str(files.directory), "--bind", "127.0.0.1",
                 "--port", str(ports[name]), "--rate-limit", "0", "--log-level", "warning"],
                clean_env(),
                tmp_path / f"{name}.log",
            )  # fmt: skip
            served.append(process)
            process.wait_for(lambda line: line.startswith("volact host listening on "))
        with vendor_world.open() as vendor:
            descriptor = vendor.descriptor("writer-2026")
            listing = tmp_path / "revocations.json"
            listing.write_text(vendor.revoke_certificate(cert_a, "key_compromise").to_file())
        invoke("host", "install-revocations", str(listing), "--dir", str(b.directory))
        client = License(descriptor, tmp_path / "pc", dns=StaticDNS(), machine_id="pc")
        client.install_key()
        client.configure(manual_host=f"127.0.0.1:{ports['b']}")
        deadline = time.monotonic() + 60
        while True:  # the running host b takes the installed list up within seconds
            assert client.activate().state == "licensed"
            if (
                client_revocations.held(client.state, client.descriptor, parse_key(key).serial)
                is not None
            ):
                break
            assert time.monotonic() < deadline, "host b never sent the installed list"
            time.sleep(0.2)
        client.configure(manual_host=f"127.0.0.1:{ports['a']}")
        attempt = client.renew()
        assert attempt.error is not None and attempt.error.code == "host_revoked"
    finally:
        for process in served:
            process.kill()


def _renew(world: World, files: HostFiles) -> str:
    """Renew the host in ``files`` offline (request, fulfil, install); the new cert id."""
    from volact.host import certificate_renewal, certification

    request = certificate_renewal.write_renewal_request(files, now=int(time.time()))
    with world.open() as vendor:
        response = vendor.fulfil(request.to_file()).response
    return certification.install_host_response(files, response, now=int(time.time())).cert_id


def test_a_revoked_host_cannot_fall_back_to_the_certificate_it_renewed(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    """A renewal leaves the previous certificate unexpired (and unlisted: its tickets stay
    good). Revoking the host must still refuse that previous certificate: otherwise the
    customer keeps the old certificate file, has the vendor revoke (or supersede) the new
    one, and puts the old one back."""
    key = issue_host_key(vendor_world, hosts=2)
    a, b = make_host(tmp_path / "a", key), make_host(tmp_path / "b", key)
    certify(vendor_world, a)
    kept = a.certificate_token()  # the customer keeps a copy of the first certificate
    renewed = _renew(vendor_world, a)
    certify(vendor_world, b)
    with vendor_world.open() as vendor:
        revoked = vendor.revoke_certificate(renewed, "key_compromise")
    a.save_certificate_token(kept)  # ... and puts it back
    hosts.start("a:7688", a)
    install_on(b, hosts.start("b:7688", b), revoked.token)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "b:7688")
    assert client.activate().state == "licensed"  # the client meets b and learns the list
    client.configure(manual_host="a:7688")
    attempt = client.renew()
    assert attempt.error is not None and attempt.error.code == "host_revoked"


def test_a_superseded_host_cannot_fall_back_to_the_certificate_it_renewed(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    """The re-certification trick with a renewal first: machine a renews (keeping its first
    certificate), a clone takes a's host id (superseding the renewed certificate); a must
    not keep working with the first one."""
    key = issue_host_key(vendor_world, hosts=1)
    a = make_host(tmp_path / "a", key)
    certify(vendor_world, a)
    kept = a.certificate_token()
    _renew(vendor_world, a)
    clone = make_host(tmp_path / "clone", key)
    clone.save_settings(dataclasses.replace(clone.settings(), host_id=a.settings().host_id))
    certify(vendor_world, clone)
    a.save_certificate_token(kept)
    hosts.start("a:7688", a)
    with vendor_world.open() as vendor:
        listing = vendor.revocation_list(key)
    install_on(clone, hosts.start("clone:7688", clone), listing.token)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "clone:7688")
    assert client.activate().state == "licensed"
    client.configure(manual_host="a:7688")
    attempt = client.renew()
    assert attempt.error is not None and attempt.error.code == "host_revoked"


def test_a_damaged_list_file_is_as_good_as_none(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    """A revocation list file in the client's state directory that is not text (a damaged
    disk, an edit) must not stop the client: it is forgotten, like a deleted one, and the next
    answer that carries a list replaces it."""
    key = issue_host_key(vendor_world, hosts=2)
    a, b = make_host(tmp_path / "a", key), make_host(tmp_path / "b", key)
    cert_a = certify(vendor_world, a)
    certify(vendor_world, b)
    hosts.start("a:7688", a)
    service_b = hosts.start("b:7688", b)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "b:7688")
    assert client.activate().state == "licensed"
    path = (
        client.state.directory
        / f"{client.descriptor.vendor_id}.{parse_key(key).serial}.revocations.token"
    )
    path.write_bytes(b"\xff\xfe not a token \x00")
    assert client_revocations.held(client.state, client.descriptor, parse_key(key).serial) is None
    assert client.status().state == "licensed"
    with vendor_world.open() as vendor:
        revoked = vendor.revoke_certificate(cert_a, "ceased")
    install_on(b, service_b, revoked.token)
    assert client.renew().error is None
    held = client_revocations.held(client.state, client.descriptor, revoked.host_key)
    assert held is not None and held.sequence == revoked.sequence


def test_a_damaged_list_file_on_a_host_is_replaced_by_the_next_install(
    vendor_world: World, tmp_path: Path
) -> None:
    key = issue_host_key(vendor_world, hosts=1)
    a = make_host(tmp_path / "a", key)
    certify(vendor_world, a)
    (a.directory / host_revocations.REVOCATIONS_FILE).write_bytes(b"\xff\x00damaged")
    assert host_revocations.load(a, a.settings()) is None
    with vendor_world.open() as vendor:
        listing = vendor.revocation_list(key)
    kept, changed = host_revocations.install(a, revocation_file(listing.token))
    assert (kept.sequence, changed) == (listing.sequence, True)


def test_a_list_of_another_host_key_never_stands_in_for_the_hosts_own(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    """One list per host key: a host installs only its own key's list, and a client uses a
    list only for hosts certified with that list's key. A revoked host of key A that sends a
    (newer) list of key B does not escape A's list; a host of key B that sends A's list gets
    nothing kept for B."""
    key_a, key_b = issue_host_key(vendor_world, hosts=2), issue_host_key(vendor_world, hosts=1)
    a1, a2 = make_host(tmp_path / "a1", key_a), make_host(tmp_path / "a2", key_a)
    b = make_host(tmp_path / "b", key_b)
    cert_a1 = certify(vendor_world, a1)
    certify(vendor_world, a2)
    cert_b = certify(vendor_world, b)
    certify(vendor_world, b)  # b re-certified: B's list names its first certificate
    with vendor_world.open() as vendor:
        list_a = vendor.revoke_certificate(cert_a1, "key_compromise")
        list_b = vendor.revocation_list(key_b)
    assert list_a.host_key == parse_key(key_a).serial != list_b.host_key
    assert [entry.cert_id for entry in list_b.certificates] == [cert_b]
    # A host refuses another key's list, and nothing changes.
    listing = tmp_path / "list_a.json"
    listing.write_text(list_a.to_file())
    done = invoke(
        "host", "install-revocations", str(listing), "--dir", str(b.directory), check=False
    )
    assert done.returncode != 0 and done.stderr.startswith("bad_request: ")
    assert "host key" in done.stderr and host_revocations.load(b, b.settings()) is None
    # The client learns A's list from a2 ...
    service_a1 = hosts.start("a1:7688", a1)
    install_on(a2, hosts.start("a2:7688", a2), list_a.token)
    service_b = hosts.start("b:7688", b)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "a2:7688")
    assert client.activate().state == "licensed"
    assert client_revocations.held(client.state, client.descriptor, list_a.host_key) == list_a
    # ... then the revoked a1 sends B's list (as if it were newer): still refused by A's list.
    service_a1._apply_revocations(list_b)
    client.configure(manual_host="a1:7688")
    attempt = client.renew()
    assert attempt.error is not None and attempt.error.code == "host_revoked"
    assert client_revocations.held(client.state, client.descriptor, list_a.host_key) == list_a
    # B's host sends A's list: the client keeps nothing for B (and A's stays as it was).
    service_b._apply_revocations(list_a)
    other = machine(vendor_world, tmp_path, "pc2", hosts, "b:7688")
    assert other.activate().state == "licensed"
    assert client_revocations.held(other.state, other.descriptor, list_b.host_key) is None
    assert client_revocations.held(other.state, other.descriptor, list_a.host_key) is None
    assert client_revocations.observe(
        other.state, other.descriptor, list_a.token, list_b.host_key
    ) is None  # fmt: skip


def test_a_running_host_certified_again_with_a_new_host_key_takes_up_that_keys_list(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    """The leaked-key playbook: a host is certified again with the customer's new host key.
    Its new key's list starts at sequence 1, lower than the old key's it holds: it is taken up
    all the same (the highest sequence wins per key), and the old key's list is no longer its."""
    from volact.host import certification

    old_key, new_key = issue_host_key(vendor_world, hosts=2), issue_host_key(vendor_world, hosts=1)
    a, b = make_host(tmp_path / "a", old_key), make_host(tmp_path / "b", old_key)
    certify(vendor_world, a)
    cert_b = certify(vendor_world, b)
    service = hosts.start("a:7688", a)
    with vendor_world.open() as vendor:
        vendor.revocation_list(old_key)  # sequence 1, empty
        old_list = vendor.revoke_certificate(cert_b, "host_replaced")
    install_on(a, service, old_list.token)
    assert old_list.sequence > 1
    certification.init_host(a, new_key)  # same host id and directory, the new key
    certify(vendor_world, a)
    assert host_revocations.load(a, a.settings()) is None  # the old key's list is not a's now
    with vendor_world.open() as vendor:
        new_list = vendor.revocation_list(new_key)
    assert new_list.sequence == 1
    install_on(a, service, new_list.token)
    assert service.revocations is not None and service.revocations.host_key == new_list.host_key


def test_clients_of_the_customers_new_key_refuse_its_revoked_old_keys_hosts(
    vendor_world: World, tmp_path: Path, hosts: Hosts
) -> None:
    """The leaked-key playbook: the customer's old key is revoked and its real host re-certified
    with a new key. A client that meets only the re-certified host learns from the new key's
    list that the old key is revoked, and refuses a leaked host of the old key."""
    from volact.host import certification

    old_key, new_key = issue_host_key(vendor_world, hosts=2), issue_host_key(vendor_world, hosts=1)
    real, leaked = make_host(tmp_path / "real", old_key), make_host(tmp_path / "leaked", old_key)
    certify(vendor_world, real)
    certify(vendor_world, leaked)
    hosts.start("leaked:7688", leaked)
    client = machine(vendor_world, tmp_path, "pc1", hosts, "leaked:7688")
    assert client.activate().state == "licensed"  # before the leak is known
    with vendor_world.open() as vendor:
        vendor.revoke_host_key(old_key, "key_compromise")
    certification.init_host(real, new_key)
    certify(vendor_world, real)
    with vendor_world.open() as vendor:
        new_list = vendor.revocation_list(new_key)
    assert [key.serial for key in new_list.host_keys] == [parse_key(old_key).serial]
    install_on(real, hosts.start("real:7688", real), new_list.token)
    client.configure(manual_host="real:7688")
    assert client.activate().state == "licensed"
    client.configure(manual_host="leaked:7688")
    attempt = client.renew()
    assert attempt.error is not None and attempt.error.code == "host_revoked"
    assert "key_compromise" in attempt.error.message
    assert client.status().state == "licensed"  # the ticket from the real host counts
