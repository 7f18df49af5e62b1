"""The revocation list's format (volact.core.revocation): one list per host key, version 2;
a version 1 list (one for all customers) is refused with a next step; one key's list never
replaces, nor is accepted as, another key's."""

from __future__ import annotations

import json

import pytest

from volact import crypto
from volact.core import revocation
from volact.core.errors import BadRequest, HostRevoked, UnsupportedVersion
from volact.core.tickets import HostCertificate

ROOT = crypto.SigningKey.generate()
KEY_A, KEY_B, KEY_C = ("host-" + letter * 24 for letter in "abc")


def _signed(
    host_key: str, sequence: int, *, key_revoked: bool = False
) -> revocation.RevocationList:
    return revocation.sign_revocation_list(
        ROOT,
        revocation.RevocationList(
            vendor_id="acme",
            host_key=host_key,
            sequence=sequence,
            issued_at=1000,
            next_update=2000,
            certificates=(revocation.RevokedCertificate("c1", "superseded", 1000),),
            host_keys=(revocation.RevokedHostKey(host_key, "ceased", 1000),) if key_revoked else (),
        ),
    )


def _verify(token: str, host_key: str | None = None) -> revocation.RevocationList:
    return revocation.verify_revocation_list(
        token, [ROOT.public_key], vendor_id="acme", host_key=host_key
    )


def test_a_list_names_its_host_key_and_is_version_2() -> None:
    listed = _verify(_signed(KEY_A, 3, key_revoked=True).token, KEY_A)
    assert (listed.host_key, listed.sequence) == (KEY_A, 3)
    assert listed.payload()["v"] == 2 and listed.payload()["host_key"] == KEY_A
    assert [key.serial for key in listed.host_keys] == [KEY_A]
    assert json.loads(listed.to_file())["v"] == 2


def test_another_keys_list_is_refused_and_never_replaces_this_keys() -> None:
    list_a, list_b = _signed(KEY_A, 2), _signed(KEY_B, 9)
    with pytest.raises(BadRequest, match=f"host key {KEY_A}'s, not {KEY_B}'s"):
        _verify(list_a.token, KEY_B)
    assert revocation.newest(list_a, list_b) is list_a  # a higher sequence of another key
    newer = _signed(KEY_A, 3)
    assert revocation.newest(list_a, newer) is newer


def _certificate(cert_id: str, key_serial: str) -> HostCertificate:
    return HostCertificate(cert_id, "acme", "h1", "k4.public.x", "Contoso", key_serial, {}, 0, 9, 0)


def test_another_keys_list_only_adds_the_refusal_of_a_revoked_host_key() -> None:
    """List A names certificate c1 and revokes key B (the same customer's old key): it refuses
    every certificate of key B, but its certificates never judge a certificate of key B, and a
    list of key B passed as key A's list is ignored."""
    list_a = revocation.sign_revocation_list(
        ROOT,
        revocation.RevocationList(
            "acme", KEY_A, 1, 1000, 2000,
            (revocation.RevokedCertificate("c1", "key_compromise", 1000),),
            (revocation.RevokedHostKey(KEY_B, "key_compromise", 1000),),
        ),
    )  # fmt: skip
    listed = _verify(list_a.token, KEY_A)
    assert [key.serial for key in listed.host_keys] == [KEY_B]
    of_a, of_b = _certificate("c1", KEY_A), _certificate("c1", KEY_B)
    with pytest.raises(HostRevoked, match="host certificate c1"):
        revocation.check_certificate(listed, of_a)
    revocation.check_certificate(None, _certificate("c2", KEY_A), (listed,))  # A is not revoked
    with pytest.raises(HostRevoked, match=f"host key {KEY_B}"):
        revocation.check_certificate(None, of_b, (listed,))
    list_c = _signed(KEY_C, 1)  # another key's list names c1: no standing in for A's or B's
    revocation.check_certificate(list_c, of_a, (list_c,))
    with pytest.raises(ValueError):
        revocation.sign_revocation_list(
            ROOT,
            revocation.RevocationList(
                "acme", KEY_A, 1, 1000, 2000, (), (revocation.RevokedHostKey("nope", "ceased", 1),)
            ),
        )


def test_a_version_1_list_and_file_are_refused_with_a_next_step() -> None:
    payload = _signed(KEY_A, 1).payload()
    payload["v"] = 1
    del payload["host_key"]
    token = crypto.sign(ROOT, revocation.REVOCATION_LIST_KIND, payload)
    with pytest.raises(UnsupportedVersion) as raised:
        _verify(token)
    assert raised.value.next_step is not None and "--host-key" in raised.value.next_step.cli
    old_file = json.dumps({"format": revocation.REVOCATION_FILE_FORMAT, "v": 1, "token": token})
    with pytest.raises(UnsupportedVersion) as raised:
        revocation.read_revocation_file(old_file)
    assert raised.value.next_step is not None


def test_a_full_list_verifies() -> None:
    full = revocation.sign_revocation_list(
        ROOT,
        revocation.RevocationList(
            "acme",
            KEY_A,
            1,
            1000,
            2000,
            tuple(
                revocation.RevokedCertificate(
                    f"{n:08x}-0000-4000-8000-000000000000", "superseded", 1
                )
                for n in range(revocation.MAX_ENTRIES)
            ),
        ),
    )
    assert len(_verify(full.token, KEY_A).certificates) == revocation.MAX_ENTRIES
    with pytest.raises(BadRequest, match=f"host key {KEY_A}"):
        revocation.sign_revocation_list(
            ROOT,
            revocation.RevocationList(
                "acme",
                KEY_A,
                2,
                1000,
                2000,
                (*full.certificates, revocation.RevokedCertificate("one-more", "superseded", 1)),
            ),
        )
