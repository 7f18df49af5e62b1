from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from volact import crypto

VECTORS = json.loads(
    (Path(__file__).parent / "data" / "paseto_v4_public_vectors.json").read_text("utf-8")
)["tests"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_signing_matches_the_paseto_standard_vectors(vector: dict[str, Any]) -> None:
    """Ed25519 is deterministic: our v4.public Sign must give the standard's token exactly."""
    key = crypto.SigningKey(
        Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["secret-key-seed"]))
    )
    assert key.public_key.paserk == "k4.public." + crypto._b64encode(
        bytes.fromhex(vector["public-key"])
    )
    token = crypto.sign_message(
        key,
        vector["payload"].encode(),
        vector["footer"].encode(),
        vector["implicit-assertion"].encode(),
    )
    assert token == vector["token"]


def test_libsodium_and_openssl_make_the_same_signatures() -> None:
    """Signatures come from libsodium, keys from cryptography (OpenSSL): Ed25519 is
    deterministic, so both must give the same 64 bytes for every key and message."""
    for size in (0, 1, 64, 450, 5000):
        key = crypto.SigningKey.generate()
        data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        assert crypto.ed25519_sign(key, data) == key._private.sign(data)
        key.public_key._public.verify(crypto.ed25519_sign(key, data), data)


def test_sign_and_verify_round_trip() -> None:
    key = crypto.SigningKey.generate()
    token = crypto.sign(key, "ticket", {"a": 1, "b": "x"})
    assert token.startswith("v4.public.")
    assert crypto.verify(token, "ticket", [key.public_key]) == {"a": 1, "b": "x"}
    footer = crypto.read_footer(token)
    assert footer == {"kid": key.key_id, "typ": "ticket", "v": 1}


def test_kind_is_bound_by_implicit_assertion() -> None:
    key = crypto.SigningKey.generate()
    token = crypto.sign(key, "ticket", {"a": 1})
    with pytest.raises(crypto.SignatureError, match="expected 'host_certificate'"):
        crypto.verify(token, "host_certificate", [key.public_key])
    # Rewriting the footer's kind does not help: the implicit assertion no longer matches.
    header, body, _footer = token.rsplit(".", 2)[0], token.split(".")[2], token.split(".")[3]
    import base64
    import json

    forged_footer = (
        base64.urlsafe_b64encode(
            json.dumps({"kid": key.key_id, "typ": "host_certificate", "v": 1}).encode()
        )
        .decode()
        .rstrip("=")
    )
    forged = f"v4.public.{body}.{forged_footer}"
    assert header
    with pytest.raises(crypto.SignatureError, match="verification failed"):
        crypto.verify(forged, "host_certificate", [key.public_key])


def test_unknown_key_and_tampering_are_refused() -> None:
    key, other = crypto.SigningKey.generate(), crypto.SigningKey.generate()
    token = crypto.sign(key, "ticket", {"a": 1})
    with pytest.raises(crypto.SignatureError, match="unknown key"):
        crypto.verify(token, "ticket", [other.public_key])
    body = token.split(".")[2]
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(crypto.SignatureError):
        crypto.verify(token.replace(body, flipped), "ticket", [key.public_key])


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v3.public.abc.def",
        "v4.public.abc",
        "v4.public.abc.!!!",
        "v4.public.abc.bnVsbA",  # footer "null"
        "v4.public.abc." + "e30",  # footer {} -> no typ
        "x" * 20000,
    ],
)
def test_malformed_tokens_raise_signature_error(token: str) -> None:
    key = crypto.SigningKey.generate()
    with pytest.raises(crypto.SignatureError):
        crypto.verify(token, "ticket", [key.public_key])


def test_footer_version_is_checked() -> None:
    import base64
    import json

    key = crypto.SigningKey.generate()
    token = crypto.sign(key, "ticket", {"a": 1})
    footer = base64.urlsafe_b64encode(
        json.dumps({"kid": key.key_id, "typ": "ticket", "v": 2}).encode()
    ).decode()
    parts = token.split(".")
    with pytest.raises(crypto.SignatureError, match="envelope version"):
        crypto.verify(".".join([*parts[:3], footer.rstrip("=")]), "ticket", [key.public_key])


def test_unverified_payload() -> None:
    key = crypto.SigningKey.generate()
    token = crypto.sign(key, "ticket", {"a": 1})
    assert crypto.unverified_payload(token) == b'{"a":1}'
    with pytest.raises(crypto.SignatureError, match="too short"):
        crypto.unverified_payload("v4.public.AAAA." + token.split(".")[3])


def test_keys_serialise_and_never_show_secrets() -> None:
    key = crypto.SigningKey.generate()
    again = crypto.SigningKey.from_pem(key.to_pem())
    assert again.key_id == key.key_id
    assert "PRIVATE" not in repr(key) and key.key_id in repr(key)
    public = crypto.VerifyKey.from_paserk(key.public_key.paserk)
    assert public == key.public_key and hash(public) == hash(key.public_key)
    assert public != "something" and repr(public).startswith("VerifyKey(k4.pid.")


@pytest.mark.parametrize("text", ["", "k4.secret.abc", "k4.public.###", 42])
def test_bad_public_keys(text: object) -> None:
    with pytest.raises(crypto.KeyFormatError):
        crypto.VerifyKey.from_paserk(text)  # type: ignore[arg-type]


def test_bad_private_keys() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(crypto.KeyFormatError, match="PEM"):
        crypto.SigningKey.from_pem(b"not a key")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(crypto.KeyFormatError, match="Ed25519"):
        crypto.SigningKey.from_pem(ec_pem)


def test_verification_agrees_with_pyseto() -> None:
    """Our v4.public verification accepts exactly what pyseto accepts (and the reverse)."""
    import pyseto

    key = crypto.SigningKey.generate()
    token = crypto.sign(key, "ticket", {"a": 1, "nested": {"b": [1, 2]}})
    # pyseto verifies our (pyseto-made) token with the same implicit assertion...
    public = pyseto.Key.from_paserk(key.public_key.paserk)
    decoded = pyseto.decode(public, token, implicit_assertion=b"volact:ticket:v1")
    assert decoded.payload == b'{"a":1,"nested":{"b":[1,2]}}'
    # ...and our key ids are PASERK's.
    assert public.to_paserk_id() == key.key_id
    # Byte for byte what pyseto makes of the same payload, footer and assertion.
    same = pyseto.encode(
        pyseto.Key.new(version=4, purpose="public", key=key.to_pem()),
        decoded.payload,
        footer=decoded.footer,
        implicit_assertion=b"volact:ticket:v1",
    )
    assert same.decode() == token
    # A token pyseto signs directly (another footer order) verifies with ours.
    other = pyseto.encode(
        pyseto.Key.new(version=4, purpose="public", key=key.to_pem()),
        b'{"x":2}',
        footer=b'{"v":1,"typ":"ticket","kid":"' + key.key_id.encode() + b'"}',
        implicit_assertion=b"volact:ticket:v1",
    )
    assert crypto.verify(other.decode(), "ticket", [key.public_key]) == {"x": 2}
    # Changing any single character of the body or footer breaks it for both.
    for index in (12, len(token) // 2, len(token) - 3):
        flipped = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
        with pytest.raises(crypto.SignatureError):
            crypto.verify(flipped, "ticket", [key.public_key])
        with pytest.raises(Exception):  # noqa: B017 - pyseto raises several types
            pyseto.decode(public, flipped, implicit_assertion=b"volact:ticket:v1")


def test_a_secret_proof_is_keyed_by_the_secret_and_covers_the_message() -> None:
    message = {"request_id": "r1", "created_at": 1}
    proof = crypto.secret_proof("secret", "purpose", message)
    assert proof == crypto.secret_proof("secret", "purpose", dict(reversed(message.items())))
    assert crypto.proof_matches(proof, "secret", "purpose", message)
    assert not crypto.proof_matches(proof, "other secret", "purpose", message)
    assert not crypto.proof_matches(proof, "secret", "another purpose", message)
    assert not crypto.proof_matches(proof, "secret", "purpose", {**message, "created_at": 2})
    assert not crypto.proof_matches("not a proof ü", "secret", "purpose", message)
    assert "secret" not in proof and len(proof) == 43  # 32 bytes, base64url
