"""The revocation list's format (volact.core.revocation): one list per host key, version 2;
a version 1 list (one for all customers) is refused with a next step; one key's list never
replaces, nor is accepted as, another key's."""

from __future__ import annotations

import json

import pytest

from volact import crypto
from volact.core import revocation
from volact.core.errors import BadRequest, UnsupportedVersion

ROOT = crypto.SigningKey.generate()
KEY_A, KEY_B = "host-" + "a" * 24, "host-" + "b" * 24


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


def test_a_list_may_revoke_only_its_own_host_key() -> None:
    payload = _signed(KEY_A, 1).payload()
    payload["host_keys"] = [{"serial": KEY_B, "reason": "ceased", "revoked_at": 1000}]
    token = crypto.sign(ROOT, revocation.REVOCATION_LIST_KIND, payload)
    with pytest.raises(BadRequest, match="only its own host key"):
        _verify(token)
    with pytest.raises(ValueError):
        revocation.sign_revocation_list(
            ROOT,
            revocation.RevocationList(
                "acme", KEY_A, 1, 1000, 2000, (), (revocation.RevokedHostKey(KEY_B, "ceased", 1),)
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
