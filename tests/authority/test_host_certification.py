"""Host certification: online against a real vendor service, offline through files, tampered
files, replays, the host limits of a key, and a certificate checked against another vendor."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from tests.authority.helpers import (
    GROUP,
    PRODUCT,
    Server,
    World,
    assert_one_line_error,
    flip_byte,
    invoke,
    issue_host_key,
    make_host,
    make_world,
    run,
    tamper_token,
)
from volact import crypto
from volact.authority.operations import VIA_OFFLINE, Vendor
from volact.core import offline
from volact.core.errors import (
    BadRequest,
    HostNotActivated,
    InvalidHostCertificate,
    InvalidKey,
    KeyExhausted,
    ReplayedRequest,
)
from volact.core.policy import REACTIVATIONS_PER_HOST
from volact.core.tickets import Ticket, issue_ticket, verify_activation, verify_certificate
from volact.host import certification
from volact.host.identity import HostFiles


def _counts(world: World) -> tuple[int, list[int]]:
    with world.open() as vendor:
        return vendor.store.certification_count(), [k.used for k in vendor.issued_keys()]


def test_online_activation_against_a_real_vendor_service(server: Server, tmp_path: Path) -> None:
    key = issue_host_key(server.world)
    h = str(tmp_path / "host")
    init = run("host", "init", "--key", key, "--dir", h)
    assert "host id:" in init.stdout
    files = HostFiles(Path(h))
    assert stat.S_IMODE((Path(h) / "host-signing.pem").stat().st_mode) == 0o600

    done = run("host", "activate", "--vendor", server.url, "--dir", h)
    assert done.stdout.startswith(f"certified by vendor acme for {GROUP} until ")
    settings = files.settings()
    with server.world.open() as vendor:
        assert settings.vendor_id == "acme"
        assert settings.vendor_root_keys == list(vendor.listed_root_keys())
        descriptor = vendor.descriptor(PRODUCT)
    assert settings.vendor_url == server.url
    certificate = verify_certificate(
        files.certificate_token(), descriptor.verify_keys(), vendor_id="acme"
    )
    assert certificate.host_id == settings.host_id
    assert certificate.host_key == files.signing_key().public_key.paserk
    assert certificate.not_after - certificate.issued_at == 730 * 86400

    # Again, with the remembered URL: a re-certification with a newer certificate.
    again = json.loads(run("host", "activate", "--json", "--dir", h).stdout)
    assert again["cert_id"] != certificate.cert_id
    with server.world.open() as vendor:
        record = vendor.find_key(key)
        assert record.used == 1
        assert [c["via"] for c in vendor.key_activations(record)] == ["online", "online"]
    assert any(line.get("event") == "host_certified" for line in server.log_lines())


def test_online_refusals_come_back_as_one_line(server: Server, tmp_path: Path) -> None:
    key = issue_host_key(server.world, hosts=1)
    invoke("host", "init", "--key", key, "--dir", str(tmp_path / "a"))
    invoke("host", "activate", "--vendor", server.url, "--dir", str(tmp_path / "a"))
    invoke("host", "init", "--key", key, "--dir", str(tmp_path / "b"))
    done = run(
        "host", "activate", "--vendor", server.url, "--dir", str(tmp_path / "b"), check=False
    )
    assert "all of its 1 hosts" in assert_one_line_error(done, "key_exhausted")
    assert not (tmp_path / "b" / "certificate.token").exists()


def test_offline_request_fulfil_response_in_processes(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world)
    h, v = str(tmp_path / "host"), str(world.path)
    run("host", "init", "--key", key, "--dir", h)
    request_file, response_file = tmp_path / "request.json", tmp_path / "response.json"
    run("host", "activate", "--offline-request", str(request_file), "--dir", h)
    assert json.loads(request_file.read_text())["format"] == "volact-host-activation-request"

    fulfilled = run("vendor", "fulfil", str(request_file), "--dir", v)
    response_file.write_text(fulfilled.stdout)
    assert json.loads(fulfilled.stdout)["format"] == "volact-host-activation-response"
    done = run("host", "activate", "--offline-response", str(response_file), "--dir", h)
    assert done.stdout.startswith("certified by vendor acme")
    files = HostFiles(Path(h))
    assert files.settings().vendor_id == "acme"
    installed = files.certificate_token()

    # The same request again is a replay (it counts nothing); the same response is refused too.
    replay = run("vendor", "fulfil", str(request_file), "--dir", v, check=False)
    assert "answered already" in assert_one_line_error(replay, "replayed_request")
    reinstall = invoke(
        "host", "activate", "--offline-response", str(response_file), "--dir", h, check=False
    )
    assert_one_line_error(reinstall, "replayed_request")
    assert files.certificate_token() == installed
    with world.open() as vendor:
        assert vendor.store.certification_count() == 1


def _request_text(world: World, tmp_path: Path, name: str = "host") -> tuple[HostFiles, str]:
    files = make_host(tmp_path / name, issue_host_key(world))
    request = certification.write_host_request_file(files, now=int(time.time()))
    return files, request.to_file()


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(host_id="another-host"),
        lambda p: p.update(key_serial="host-000000000000000000000000"),
        lambda p: p.update(created_at=p["created_at"] + 1),
        lambda p: p.update(machine="elsewhere"),
    ],
    ids=["host_id", "key_serial", "created_at", "machine"],
)
def test_tampered_request_is_refused_and_counts_nothing(
    world: World, tmp_path: Path, change: object
) -> None:
    _, text = _request_text(world, tmp_path)
    data = json.loads(text)
    data["token"] = tamper_token(data["token"], change)  # type: ignore[arg-type]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    before = _counts(world)
    done = invoke("vendor", "fulfil", str(tampered), "--dir", str(world.path), check=False)
    assert "signature does not verify" in assert_one_line_error(done, "bad_request")
    assert _counts(world) == before


def test_request_with_one_byte_changed_is_refused(world: World, tmp_path: Path) -> None:
    _, text = _request_text(world, tmp_path)
    data = json.loads(text)
    before = _counts(world)
    token = data["token"]
    for position in (len("v4.public.") + 5, len(token) // 2, token.rindex(".") - 3):
        data["token"] = flip_byte(token, position)
        tampered = tmp_path / "tampered.json"
        tampered.write_text(json.dumps(data))
        done = invoke("vendor", "fulfil", str(tampered), "--dir", str(world.path), check=False)
        assert_one_line_error(done, "bad_request")
    assert _counts(world) == before
    # The untouched request still works (nothing was consumed by the failures).
    (tmp_path / "good.json").write_text(text)
    invoke("vendor", "fulfil", str(tmp_path / "good.json"), "--dir", str(world.path))


def _certified_pair(world: World, tmp_path: Path) -> tuple[HostFiles, str, str]:
    """A host with an installed certificate, and a second (pending) response for it."""
    files, text = _request_text(world, tmp_path)
    with world.open() as vendor:
        first = vendor.fulfil(text).response
    certification.install_host_response(files, first, now=int(time.time()))
    request = certification.write_host_request_file(files, now=int(time.time()))
    with world.open() as vendor:
        second = vendor.fulfil(request.to_file()).response
    return files, first, second


def _tamper_certificate(response: str, change: object) -> str:
    data = json.loads(response)

    def edit(payload: dict[str, object]) -> None:
        payload["certificate"] = tamper_token(payload["certificate"], change)  # type: ignore[arg-type]

    data["token"] = tamper_token(data["token"], edit)
    return json.dumps(data)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: _tamper_certificate(r, lambda c: c.update(not_after=c["not_after"] + 10**8)),
        lambda r: _tamper_certificate(
            r, lambda c: c["groups"].update({"graphics-2026": c["groups"][GROUP]})
        ),
        lambda r: _tamper_certificate(
            r, lambda c: c["groups"][GROUP].update(validity=730 * 86400, threshold=1)
        ),
        lambda r: json.dumps(
            {
                **json.loads(r),
                "token": tamper_token(json.loads(r)["token"], lambda p: p.update(vendor_name="x")),
            }
        ),
        lambda r: json.dumps({**json.loads(r), "token": flip_byte(json.loads(r)["token"], 200)}),
        lambda r: r[: len(r) // 2],
    ],
    ids=["longer-validity", "more-groups", "policy", "vendor-name", "one-byte", "truncated"],
)
def test_tampered_response_is_refused_and_changes_nothing(
    world: World, tmp_path: Path, edit: object
) -> None:
    files, _, second = _certified_pair(world, tmp_path)
    installed = files.certificate_token()
    settings = files.settings()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(edit(second))  # type: ignore[operator]
    done = invoke(
        "host",
        "activate",
        "--offline-response",
        str(tampered),
        "--dir",
        str(files.directory),
        check=False,
    )
    assert_one_line_error(done, "bad_request")
    assert files.certificate_token() == installed
    assert files.settings() == settings
    # The genuine response is still accepted afterwards.
    certification.install_host_response(files, second, now=int(time.time()))
    assert files.certificate_token() != installed


def test_response_made_for_another_host_is_refused(world: World, tmp_path: Path) -> None:
    mine, _ = _request_text(world, tmp_path, "mine")
    _, other_request = _request_text(world, tmp_path, "other")
    with world.open() as vendor:
        response = vendor.fulfil(other_request).response
    with pytest.raises(BadRequest, match=r"made for host .* not for this host"):
        certification.install_host_response(mine, response, now=int(time.time()))
    with pytest.raises(HostNotActivated, match="not certified yet"):
        mine.certificate_token()


def test_older_response_after_a_newer_one_is_refused(world: World, tmp_path: Path) -> None:
    files, text = _request_text(world, tmp_path)
    newer = certification.write_host_request_file(files, now=int(time.time()))
    with world.open() as vendor:
        old_response = vendor.fulfil(text).response
        vendor.clock = lambda: int(time.time()) + 60
        new_response = vendor.fulfil(newer.to_file()).response
    certification.install_host_response(files, new_response, now=int(time.time()))
    with pytest.raises(ReplayedRequest, match="older certificate"):
        certification.install_host_response(files, old_response, now=int(time.time()))


def _certify(vendor: Vendor, files: HostFiles) -> None:
    request = certification.make_host_request(files, now=int(time.time()))
    vendor.certify_host(offline.read_host_request(request.to_file()), via=VIA_OFFLINE)


def test_seventh_host_on_a_six_host_key_is_exhausted(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world, hosts=6)
    hosts = [make_host(tmp_path / f"h{n}", key) for n in range(7)]
    with world.open() as vendor:
        for files in hosts[:6]:
            _certify(vendor, files)
        with pytest.raises(KeyExhausted, match="all of its 6 hosts") as refused:
            _certify(vendor, hosts[6])
        assert refused.value.details["limit"] == 6
        _certify(vendor, hosts[0])  # a known host may still re-certify
        assert vendor.find_key(key).used == 6
    # Through the command line too, as one line.
    request = certification.write_host_request_file(hosts[6], now=int(time.time()))
    (tmp_path / "req.json").write_text(request.to_file())
    done = invoke(
        "vendor", "fulfil", str(tmp_path / "req.json"), "--dir", str(world.path), check=False
    )
    assert "ask the vendor for more hosts" in assert_one_line_error(done, "key_exhausted")


def test_eleventh_recertification_of_one_host_is_exhausted(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world)
    files = make_host(tmp_path / "h", key)
    with world.open() as vendor:
        _certify(vendor, files)  # the first certification
        for _ in range(REACTIVATIONS_PER_HOST):
            _certify(vendor, files)  # ten re-certifications
        with pytest.raises(KeyExhausted, match="re-certifications, the limit"):
            _certify(vendor, files)  # the eleventh re-certification
        assert (
            vendor.store.certifications_of_host(
                vendor.find_key(key).serial, files.settings().host_id
            )
            == 11
        )
        # Another host on the same key is not affected.
        _certify(vendor, make_host(tmp_path / "h2", key))


def test_wrong_keys_are_refused_by_the_vendor(world: World, tmp_path: Path) -> None:
    files = make_host(tmp_path / "h", issue_host_key(world))
    other = make_world(tmp_path / "other", vendor_id="globex")
    with other.open() as vendor, pytest.raises(InvalidKey, match="not issued by vendor 'globex'"):
        _certify(vendor, files)


def test_certificate_of_vendor_a_fails_under_vendor_b(world: World, tmp_path: Path) -> None:
    """A host certified by vendor A cannot activate vendor B's product of the same name."""
    files = make_host(tmp_path / "h", issue_host_key(world))
    files_text = certification.write_host_request_file(files, now=int(time.time())).to_file()
    with world.open() as vendor_a:
        certification.install_host_response(
            files, vendor_a.fulfil(files_text).response, now=int(time.time())
        )
        descriptor_a = vendor_a.descriptor(PRODUCT)
    other = make_world(tmp_path / "b", vendor_id="acme")  # even the same vendor id and product
    with other.open() as vendor_b:
        descriptor_b = vendor_b.descriptor(PRODUCT)

    certificate = verify_certificate(files.certificate_token(), descriptor_a.verify_keys())
    now = int(time.time())
    ticket = issue_ticket(
        files.signing_key(),
        Ticket(
            issuer="host", issuer_id=certificate.host_id, product=PRODUCT, group=GROUP,
            cmid="1b4e28ba-2fa1-11d2-883f-0016d3cca427", fingerprint="ab" * 16, issued_at=now,
            valid_until=now + 180 * 86400, renewal_interval=7 * 86400, retry_interval=7200,
            oot_grace=30 * 86400, count=5, threshold=5, nonce="n" * 22, cert_id=certificate.cert_id,
        ),
    )  # fmt: skip
    verify_activation(
        descriptor_a,
        ticket.token,
        certificate.token,
        cmid=ticket.cmid,
        fingerprint=ticket.fingerprint,
    )
    with pytest.raises(InvalidHostCertificate):
        verify_activation(
            descriptor_b,
            ticket.token,
            certificate.token,
            cmid=ticket.cmid,
            fingerprint=ticket.fingerprint,
        )


def test_rotation_keeps_old_certificates_valid_and_signs_new_ones_with_the_new_key(
    world: World, tmp_path: Path
) -> None:
    files, text = _request_text(world, tmp_path)
    with world.open() as vendor:
        old_root, _ = vendor.active_root_key()
        certification.install_host_response(
            files, vendor.fulfil(text).response, now=int(time.time())
        )
        old_certificate = files.certificate_token()
        new_root = vendor.add_root_key()
        # Step 1: listed but not signing, so hosts re-certified now still satisfy old apps.
        old_app = vendor.descriptor(PRODUCT)
        standby_request = certification.write_host_request_file(files, now=int(time.time()))
        certification.install_host_response(
            files, vendor.fulfil(standby_request.to_file()).response, now=int(time.time())
        )
        assert crypto.read_footer(files.certificate_token())["kid"] == old_root.key_id
        new_root = vendor.activate_root_key(new_root.key_id)
        descriptor = vendor.descriptor(PRODUCT)
        assert set(old_app.root_keys) == set(descriptor.root_keys)
        request = certification.write_host_request_file(files, now=int(time.time()))
        certification.install_host_response(
            files, vendor.fulfil(request.to_file()).response, now=int(time.time())
        )
    assert crypto.read_footer(old_certificate)["kid"] == old_root.key_id
    assert crypto.read_footer(files.certificate_token())["kid"] == new_root.key_id
    for token in (old_certificate, files.certificate_token()):
        verify_certificate(token, descriptor.verify_keys(), vendor_id="acme")
    assert files.settings().vendor_root_keys == [new_root.public_key, old_root.public_key]
