"""Supersession and revocation on the vendor's side (issue 20): a host id certified again
supersedes its certificate, a host key never has more live certificates than its limit, each
ending is recorded with its reason, and every change signs a newer revocation list."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.authority.helpers import (
    GROUP,
    Server,
    World,
    assert_one_line_error,
    invoke,
    issue_host_key,
    issue_mak,
    make_host,
)
from volact.authority.operations import VIA_OFFLINE, Vendor
from volact.core import offline, revocation
from volact.core.errors import BadRequest, KeyExhausted, KeyRevoked, NotFound
from volact.core.tickets import HostCertificate
from volact.crypto import VerifyKey
from volact.host import certification
from volact.host.identity import HostFiles


def _certify(vendor: Vendor, files: HostFiles) -> HostCertificate:
    request = certification.make_host_request(files, now=int(time.time()))
    response = vendor.certify_host(offline.read_host_request(request.to_file()), via=VIA_OFFLINE)
    return offline.read_host_response(response.to_file())[1]


def _impostor(path: Path, key: str, of: HostFiles) -> HostFiles:
    """A new machine given a certified host's host id (the re-certification trick)."""
    files = make_host(path, key)
    files.save_settings(dataclasses.replace(files.settings(), host_id=of.settings().host_id))
    return files


def _live(vendor: Vendor, key: str) -> list[str]:
    serial = vendor.find_key(key).serial
    return [row["cert_id"] for row in vendor.store.live_certifications(serial, int(time.time()))]


def _newest(vendor: Vendor, key: str) -> revocation.RevocationList:
    keys = [VerifyKey.from_paserk(k) for k in vendor.listed_root_keys()]
    return revocation.verify_revocation_list(
        vendor.revocation_list(key).token, keys, vendor_id=vendor.vendor_id
    )


def test_seventh_distinct_host_refused_and_recertification_supersedes(
    world: World, tmp_path: Path
) -> None:
    key = issue_host_key(world, hosts=6)
    hosts = [make_host(tmp_path / f"h{n}", key) for n in range(7)]
    with world.open() as vendor:
        first = [_certify(vendor, files) for files in hosts[:6]]
        with pytest.raises(KeyExhausted, match="all of its 6 hosts"):
            _certify(vendor, hosts[6])
        # The trick: ten new machines each given host 0's id. Each supersedes the one before.
        certificates = [first[0]]
        for n in range(10):
            certificates.append(_certify(vendor, _impostor(tmp_path / f"i{n}", key, hosts[0])))
        live = _live(vendor, key)
        assert len(live) == 6  # never more than the key's host limit
        assert certificates[-1].cert_id in live
        assert not {c.cert_id for c in certificates[:-1]} & set(live)
        # Each ending is recorded with its reason and successor.
        for older, newer in itertools.pairwise(certificates):
            row = vendor.store.certification(older.cert_id)
            assert row is not None
            assert (row["end_reason"], row["replaced_by"]) == ("superseded", newer.cert_id)
        # The newest list names every superseded certificate, and only those.
        listed = {entry.cert_id: entry.reason for entry in _newest(vendor, key).certificates}
        assert listed == {c.cert_id: "superseded" for c in certificates[:-1]}
        # The re-certification limit still counts: the eleventh re-certification is refused.
        with pytest.raises(KeyExhausted, match="re-certifications, the limit"):
            _certify(vendor, _impostor(tmp_path / "i10", key, hosts[0]))
        assert vendor.find_key(key).used == 6


def test_every_change_signs_a_higher_sequence(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world, hosts=2)
    files = make_host(tmp_path / "h", key)
    with world.open() as vendor:
        empty = vendor.revocation_list(key)
        assert empty.sequence == 1 and empty.certificates == ()
        assert vendor.revocation_list(key).sequence == 1  # asking again signs nothing new
        first = _certify(vendor, files)
        assert vendor.revocation_list(key).sequence == 1  # a first certification changes nothing
        second = _certify(vendor, files)  # the same host, re-certified: supersedes
        assert vendor.revocation_list(key).sequence == 2
        revoked = vendor.revoke_certificate(second.cert_id, "key_compromise")
        assert revoked.sequence == 3
        reasons = {entry.cert_id: entry.reason for entry in revoked.certificates}
        assert reasons == {first.cert_id: "superseded", second.cert_id: "key_compromise"}
        row = vendor.store.certification(second.cert_id)
        assert row is not None and (row["end_reason"], row["revocation_reason"]) == (
            "revoked",
            "key_compromise",
        )
        assert _live(vendor, key) == []
        with pytest.raises(NotFound):
            vendor.revoke_certificate("no-such-cert", "ceased")


def test_revoked_host_key_certifies_nothing_more(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world, hosts=3)
    hosts = [make_host(tmp_path / f"h{n}", key) for n in range(2)]
    with world.open() as vendor:
        for files in hosts:
            _certify(vendor, files)
        serial = vendor.find_key(key).serial
        revoked, ended = vendor.revoke_host_key(serial, "ceased")
        assert ended == 2
        assert [(k.serial, k.reason) for k in revoked.host_keys] == [(serial, "ceased")]
        assert revoked.certificates == ()  # the key's one entry covers its certificates
        with pytest.raises(KeyRevoked, match="revoked by the vendor"):
            _certify(vendor, hosts[0])
    # Through the command line: `vendor revoke --host-key` and the refusal as one line.
    request = certification.write_host_request_file(hosts[1], now=int(time.time()))
    (tmp_path / "req.json").write_text(request.to_file())
    done = invoke(
        "vendor", "fulfil", str(tmp_path / "req.json"), "--dir", str(world.path), check=False
    )
    assert_one_line_error(done, "key_revoked")


def test_revoke_and_install_through_the_command_line(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world, hosts=2)
    files = make_host(tmp_path / "h", key)
    request = certification.write_host_request_file(files, now=int(time.time()))
    with world.open() as vendor:
        response = vendor.certify_host(
            offline.read_host_request(request.to_file()), via=VIA_OFFLINE
        )
        older = vendor.revocation_list(key)  # sequence 1, empty
    installed = certification.install_host_response(files, response.to_file(), now=int(time.time()))
    listing, old_file = tmp_path / "list.json", tmp_path / "old.json"
    old_file.write_text(older.to_file())
    vendor_dir = ("--dir", str(world.path))
    done = invoke(
        "vendor", "revoke", installed.cert_id, "--reason", "host_replaced", "-o", str(listing),
        *vendor_dir, "--json",
    )  # fmt: skip
    assert '"sequence": 2' in done.stdout
    both = invoke(
        "vendor", "revoke", installed.cert_id, "--host-key", key, "--reason", "ceased",
        *vendor_dir, check=False,
    )  # fmt: skip
    assert_one_line_error(both, "bad_request")
    shown = invoke("vendor", "revocations", "--host-key", key, "--show", *vendor_dir)
    assert installed.cert_id in shown.stdout and "host_replaced" in shown.stdout
    assert f"of host key {installed.key_serial}" in shown.stdout
    host_dir = ("--dir", str(files.directory))
    done = invoke("host", "install-revocations", str(listing), *host_dir)
    assert "revocation list 2 installed" in done.stdout
    done = invoke("host", "install-revocations", str(old_file), *host_dir)
    assert "revocation list 2 kept" in done.stdout
    # A file of version 1 (one list for every customer): refused, with what to do instead.
    v1_file = tmp_path / "v1.json"
    v1_file.write_text(json.dumps({"format": "volact-revocation-list", "v": 1, "token": "x"}))
    done = invoke("host", "install-revocations", str(v1_file), *host_dir, check=False)
    assert_one_line_error(done, "unsupported_version")
    assert "--host-key" in done.stderr
    assert "revocation list" in invoke("explain", "host_revoked").stdout


def test_the_vendor_service_serves_the_newest_list_of_the_asking_key(server: Server) -> None:
    key = issue_host_key(server.world, hosts=1)
    with server.world.open() as vendor:
        serial = vendor.find_key(key).serial
    url = server.url + "/v1/revocations"
    answer = httpx.get(url, params={"host_key": serial}, timeout=30).json()
    assert answer["ok"] is True and answer["format"] == "volact-revocation-list"
    assert answer["v"] == 2
    posted = httpx.post(url, json={"v": 2, "host_key": serial}, timeout=30).json()
    with server.world.open() as vendor:
        keys = [VerifyKey.from_paserk(k) for k in vendor.listed_root_keys()]
        for token in (answer["token"], posted["token"]):
            served = revocation.verify_revocation_list(token, keys, vendor_id="acme")
            assert served.host_key == serial
            assert served.sequence == vendor.revocation_list(key).sequence
    # Without a host key, or with one the vendor never issued: refused, nothing signed.
    unnamed = httpx.get(url, timeout=30)
    assert unnamed.status_code == 400 and unnamed.json()["error"]["code"] == "bad_request"
    unknown = httpx.post(url, json={"v": 2, "host_key": "host-" + "0" * 24}, timeout=30)
    assert unknown.json()["error"]["code"] == "not_found"
    old = httpx.post(url, json={"v": 1, "host_key": serial}, timeout=30)
    assert old.json()["error"]["code"] == "unsupported_version"


def test_key_show_says_how_each_certificate_ended(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world, hosts=1)
    files = make_host(tmp_path / "h", key)
    with world.open() as vendor:
        first = _certify(vendor, files)
        _certify(vendor, files)
    shown = invoke("vendor", "key", "show", key, "--dir", str(world.path)).stdout
    assert f"cert {first.cert_id}, superseded " in shown


def test_a_revoked_host_key_drops_off_the_list_once_its_certificates_expired(
    world: World, tmp_path: Path
) -> None:
    """A list holds at most 256 entries; a revoked host key certifies nothing more, so once
    every certificate issued with it has expired its entry has nothing left to refuse and must
    not hold a place on the list for ever."""
    key = issue_host_key(world, hosts=1)
    files = make_host(tmp_path / "h", key)
    with world.open() as vendor:
        certificate = _certify(vendor, files)
        listed = vendor.revoke_host_key(key, "ceased")[0]
        assert [entry.serial for entry in listed.host_keys] == [certificate.key_serial]
    later = certificate.not_after + 1
    with Vendor.open(world.path, clock=lambda: later) as vendor:
        assert _newest(vendor, key).host_keys == ()
        with pytest.raises(KeyRevoked):  # ... and the key still certifies nothing
            _certify(vendor, make_host(tmp_path / "h2", key))


def test_one_customers_recertifications_never_stop_anothers(world: World, tmp_path: Path) -> None:
    """Each host key (one customer's) has its own list, of at most 256 entries: customer A's
    300 honest re-certifications fill A's list (the 257th and later are refused, for A only),
    and customer B's re-certification goes through, with a list naming only B's certificate."""
    key_a, key_d = issue_host_key(world, hosts=30), issue_host_key(world, hosts=1)
    with world.open() as vendor:
        key_b = vendor.issue_host_key(customer="Fabrikam", groups=[GROUP], host_limit=1).key_text
    hosts_a = [make_host(tmp_path / f"a{n}", key_a) for n in range(30)]
    host_b = make_host(tmp_path / "b", key_b)
    with world.open() as vendor:
        for files in hosts_a:
            _certify(vendor, files)
        done, refused = 0, []
        for _ in range(10):  # 30 hosts x 10 re-certifications (the per-host limit) = 300
            for files in hosts_a:
                try:
                    _certify(vendor, files)
                    done += 1
                except BadRequest as exc:
                    refused.append(exc)
        assert (done, len(refused)) == (revocation.MAX_ENTRIES, 300 - revocation.MAX_ENTRIES)
        serial_a = vendor.find_key(key_a).serial
        assert f"revocation list of host key {serial_a}" in refused[0].message
        assert len(_newest(vendor, key_a).certificates) == revocation.MAX_ENTRIES
        assert len(_live(vendor, key_a)) == 30  # a refused re-certification changed nothing
        first_b = _certify(vendor, host_b)
        second_b = _certify(vendor, host_b)  # B re-certifies: supersedes, as it should
        listed_b = _newest(vendor, key_b)
        assert listed_b.host_key == vendor.find_key(key_b).serial
        assert [entry.cert_id for entry in listed_b.certificates] == [first_b.cert_id]
        assert _live(vendor, key_b) == [second_b.cert_id]
        # A's list is full; revoking A's customer's other key D still works, and A's list,
        # which has no room to name D, is still signed (A's hosts can still fetch one).
        _certify(vendor, make_host(tmp_path / "d", key_d))
        vendor.revoke_host_key(key_d, "ceased")
        full = _newest(vendor, key_a)
        assert len(full.certificates) == revocation.MAX_ENTRIES and full.host_keys == ()


def test_a_revoked_host_keys_own_list_says_so_and_other_customers_lists_do_not(
    world: World, tmp_path: Path
) -> None:
    """Key A is revoked: its own list says so, and so does the list of its customer's other key
    C (re-signed at once: hosts re-certified with C carry A's revocation); the list of another
    customer's key B is untouched and names nothing of A's."""
    key_a, key_c = issue_host_key(world, hosts=2), issue_host_key(world, hosts=2)
    with world.open() as vendor:
        key_b = vendor.issue_host_key(customer="Fabrikam", groups=[GROUP], host_limit=2).key_text
    host_a, host_b = make_host(tmp_path / "a", key_a), make_host(tmp_path / "b", key_b)
    with world.open() as vendor:
        _certify(vendor, host_a)
        first_b = _certify(vendor, host_b)
        _certify(vendor, host_b)
        before_b, before_c = vendor.revocation_list(key_b), vendor.revocation_list(key_c)
        listed, ended = vendor.revoke_host_key(key_a, "key_compromise")
        serial_a = vendor.find_key(key_a).serial
        assert ended == 1 and listed.host_key == serial_a
        assert [(k.serial, k.reason) for k in listed.host_keys] == [(serial_a, "key_compromise")]
        assert listed.certificates == ()  # the key's one entry covers its certificates
        after_c = vendor.revocation_list(key_c)  # the same customer's other key
        assert after_c.sequence == before_c.sequence + 1
        assert [k.serial for k in after_c.host_keys] == [serial_a] and after_c.certificates == ()
        after_b = vendor.revocation_list(key_b)  # another customer's: untouched
        assert after_b == before_b and after_b.host_keys == ()
        assert [entry.cert_id for entry in after_b.certificates] == [first_b.cert_id]
    mak = issue_mak(world, count=1)
    with world.open() as vendor, pytest.raises(BadRequest, match="lists are of host keys"):
        vendor.revocation_list(mak)
