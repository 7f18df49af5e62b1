from __future__ import annotations

from dataclasses import replace

import pytest

from tests.factories import T0, Vendor
from volact import crypto
from volact.core.durations import DAY, HOUR
from volact.core.errors import InvalidHostCertificate, InvalidTicket
from volact.core.policy import GroupPolicy
from volact.core.tickets import (
    HostCertificate,
    Ticket,
    issue_certificate,
    issue_ticket,
    verify_activation,
    verify_certificate,
)

CMID = "6f1c2a0e-8d4b-4c55-9a43-2d1f0b7e9c11"
FP = "ab" * 16
NONCE = "bm9uY2Vub25jZW5vbmNlMTIz"


def host_ticket(**changes: object) -> Ticket:
    base = Ticket(
        issuer="host",
        issuer_id="host-1",
        cert_id="cert-1",
        product="writer-2026",
        group="office-2026",
        cmid=CMID,
        fingerprint=FP,
        issued_at=T0,
        valid_until=T0 + 180 * DAY,
        renewal_interval=7 * DAY,
        retry_interval=2 * HOUR,
        oot_grace=30 * DAY,
        count=5,
        threshold=5,
        nonce=NONCE,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def world() -> tuple[Vendor, crypto.SigningKey, HostCertificate]:
    vendor = Vendor()
    host_key = crypto.SigningKey.generate()
    return vendor, host_key, vendor.certificate(host_key)


def test_the_whole_chain_verifies(world: tuple[Vendor, crypto.SigningKey, HostCertificate]) -> None:
    vendor, host_key, cert = world
    ticket = issue_ticket(host_key, host_ticket())
    activation = verify_activation(
        vendor.descriptor(), ticket.token, cert.token, cmid=CMID, fingerprint=FP, nonce=NONCE
    )
    assert activation.ticket == ticket
    assert activation.certificate == cert
    assert verify_certificate(cert.token, [vendor.root.public_key], vendor_id="acme") == cert


def test_a_ticket_stays_valid_after_its_certificate_expires(world) -> None:
    vendor, host_key, _ = world
    cert = vendor.certificate(host_key, not_before=T0 - DAY, not_after=T0 + DAY)
    ticket = issue_ticket(host_key, host_ticket())
    # Verification takes no "now": the ticket was issued inside the certificate's validity.
    verify_activation(vendor.descriptor(), ticket.token, cert.token, cmid=CMID, fingerprint=FP)


def test_another_vendors_host_is_refused(world) -> None:
    vendor, host_key, cert = world
    other = Vendor(vendor_id="globex")
    other_cert = other.certificate(host_key)
    ticket = issue_ticket(host_key, host_ticket())
    with pytest.raises(InvalidHostCertificate, match="unknown key"):
        verify_activation(
            vendor.descriptor(), ticket.token, other_cert.token, cmid=CMID, fingerprint=FP
        )
    # Same vendor id but a different root key: still refused.
    impostor = Vendor(vendor_id="acme")
    with pytest.raises(InvalidHostCertificate):
        verify_activation(
            vendor.descriptor(),
            ticket.token,
            impostor.certificate(host_key).token,
            cmid=CMID,
            fingerprint=FP,
        )
    # A certificate of another vendor id signed with a listed key (rotation gone wrong).
    wrong_id = issue_certificate(vendor.root, replace(cert, vendor_id="globex"))
    with pytest.raises(InvalidHostCertificate, match="another vendor"):
        verify_activation(
            vendor.descriptor(), ticket.token, wrong_id.token, cmid=CMID, fingerprint=FP
        )


def test_certificate_must_cover_the_group(world) -> None:
    vendor, host_key, _ = world
    cert = vendor.certificate(host_key, groups={"other-group": GroupPolicy()})
    ticket = issue_ticket(host_key, host_ticket())
    with pytest.raises(InvalidHostCertificate, match="does not cover"):
        verify_activation(vendor.descriptor(), ticket.token, cert.token, cmid=CMID, fingerprint=FP)


def test_missing_certificate_and_unreadable_ticket(world) -> None:
    vendor, host_key, cert = world
    ticket = issue_ticket(host_key, host_ticket())
    with pytest.raises(InvalidTicket, match="without a host certificate"):
        verify_activation(vendor.descriptor(), ticket.token, None, cmid=CMID, fingerprint=FP)
    with pytest.raises(InvalidTicket):
        verify_activation(vendor.descriptor(), "garbage", cert.token, cmid=CMID, fingerprint=FP)


def test_ticket_signed_by_another_key(world) -> None:
    vendor, _, cert = world
    rogue = crypto.SigningKey.generate()
    ticket = issue_ticket(rogue, host_ticket())
    with pytest.raises(InvalidTicket, match="unknown key"):
        verify_activation(vendor.descriptor(), ticket.token, cert.token, cmid=CMID, fingerprint=FP)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"product": "calc-2026"}, "another product"),
        ({"group": "other"}, "another product"),
        ({"cmid": "00000000-0000-4000-8000-000000000000"}, "another machine"),
        ({"fingerprint": "cd" * 16}, "another machine"),
        ({"valid_until": T0}, "empty validity"),
        ({"issuer": "vendor"}, "issuer does not match"),
        ({"issuer_id": "host-2"}, "issuer does not match"),
        ({"cert_id": "cert-2"}, "another host certificate"),
        (
            {"issued_at": T0 + 800 * DAY, "valid_until": T0 + 900 * DAY},
            "outside the host certificate",
        ),
        ({"valid_until": T0 + 181 * DAY}, "exceeds the vendor's policy"),
        ({"valid_until": None}, "exceeds the vendor's policy"),
        ({"oot_grace": 60 * DAY}, "grace differs"),
        ({"renewal_interval": 31 * DAY}, "renewal interval"),
        ({"retry_interval": 60}, "retry interval"),
        ({"issuer": "someone"}, "unknown ticket issuer"),
        ({"cmid": "not-a-uuid-not-a-uuid-not-a-uuid!"}, "malformed"),
    ],
)
def test_every_ticket_check(world, changes: dict[str, object], message: str) -> None:
    vendor, host_key, cert = world
    ticket = issue_ticket(host_key, host_ticket(**changes))
    expected_cmid = changes.get("cmid", CMID) if "another machine" not in message else CMID
    with pytest.raises(InvalidTicket, match=message):
        verify_activation(
            vendor.descriptor(),
            ticket.token,
            cert.token,
            cmid=str(expected_cmid) if message != "malformed" else CMID,
            fingerprint=FP,
        )


def test_nonce_is_checked_on_activation_only(world) -> None:
    vendor, host_key, cert = world
    ticket = issue_ticket(host_key, host_ticket())
    descriptor = vendor.descriptor()
    verify_activation(descriptor, ticket.token, cert.token, cmid=CMID, fingerprint=FP)
    with pytest.raises(InvalidTicket, match="nonce"):
        verify_activation(
            descriptor, ticket.token, cert.token, cmid=CMID, fingerprint=FP, nonce="x" * 22
        )


def test_ticket_version_is_checked(world) -> None:
    vendor, host_key, cert = world
    payload = {**host_ticket().payload(), "v": 9}
    token = crypto.sign(host_key, "ticket", payload)
    with pytest.raises(InvalidTicket, match="version"):
        verify_activation(vendor.descriptor(), token, cert.token, cmid=CMID, fingerprint=FP)


def test_mak_tickets_are_signed_by_the_vendor() -> None:
    vendor = Vendor()
    ticket = issue_ticket(
        vendor.root,
        host_ticket(
            issuer="vendor", issuer_id="acme", cert_id=None, valid_until=None, count=1, threshold=1
        ),
    )
    activation = verify_activation(
        vendor.descriptor(), ticket.token, None, cmid=CMID, fingerprint=FP
    )
    assert activation.certificate is None and activation.ticket.valid_until is None
    wrong = issue_ticket(vendor.root, host_ticket(issuer="host", issuer_id="acme", cert_id=None))
    with pytest.raises(InvalidTicket, match="vendor \\(MAK\\) ticket"):
        verify_activation(vendor.descriptor(), wrong.token, None, cmid=CMID, fingerprint=FP)


def test_certificate_checks(world) -> None:
    vendor, host_key, cert = world
    keys = [vendor.root.public_key]
    with pytest.raises(InvalidHostCertificate, match="version"):
        verify_certificate(
            crypto.sign(vendor.root, "host_certificate", {**cert.payload(), "v": 2}), keys
        )
    with pytest.raises(InvalidHostCertificate, match="malformed"):
        verify_certificate(
            crypto.sign(vendor.root, "host_certificate", {**cert.payload(), "groups": []}), keys
        )
    with pytest.raises(InvalidHostCertificate, match="empty validity"):
        verify_certificate(
            crypto.sign(
                vendor.root, "host_certificate", {**cert.payload(), "not_after": cert.not_before}
            ),
            keys,
        )
    bad_key = issue_certificate(vendor.root, replace(cert, host_key="k4.public.nope"))
    ticket = issue_ticket(host_key, host_ticket())
    with pytest.raises(InvalidHostCertificate, match="unreadable key"):
        verify_activation(
            vendor.descriptor(), ticket.token, bad_key.token, cmid=CMID, fingerprint=FP
        )
    with pytest.raises(ValueError, match="at least one group"):
        issue_certificate(vendor.root, replace(cert, groups={}))
    with pytest.raises(ValueError, match="later"):
        issue_certificate(vendor.root, replace(cert, not_after=cert.not_before))
    assert cert.covers("office-2026") and not cert.covers("x")
    assert cert.valid_at(T0) and not cert.valid_at(cert.not_after + 1)
