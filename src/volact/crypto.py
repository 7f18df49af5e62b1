"""The one module that touches the signing libraries (pyseto, and cryptography's Ed25519).

Every signed object in volact is a PASETO ``v4.public`` token (Ed25519; the algorithm is fixed by
the version and purpose, so nothing in the input can choose it). On top of PASETO:

- the **footer** is JSON ``{"kid": <PASERK k4.pid of the signing key>, "typ": <kind>, "v": 1}``;
  the key id lets a verifier pick the right root key after a rotation;
- the **implicit assertion** is ``b"volact:<kind>:v1"``, so a token signed as one kind (say a
  host certificate) never verifies as another (a ticket), even under the same key;
- the **payload** is a JSON object; the library signs the bytes exactly as serialised, so there
  is no canonicalisation to get wrong.

Signing goes through pyseto. Verification is PASETO v4.public's own procedure (pre-authentication
encoding, then one Ed25519 verification with cryptography) written out here, because importing
pyseto costs about 0.1 s and every ``volact client status`` verifies two tokens; tests check it
against pyseto in both directions. Verification raises :class:`SignatureError`, never returns a
bool.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# pyseto (which imports every PASETO version and their ciphers, about 0.1 s) is imported only
# to sign. Verification, which every `volact client status` does, is PASETO v4.public done here
# with the same Ed25519 library (PAE + Ed25519, spec section "v4.public"), and is checked
# against pyseto's tokens in tests/test_crypto.py.
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_PUBLIC_PREFIX = "k4.public."
_PID_PREFIX = "k4.pid."

ENVELOPE_VERSION = 1
_HEADER = "v4.public."


class SignatureError(Exception):
    """A token is malformed, of the wrong kind, signed by an unknown key, or its signature fails."""


class KeyFormatError(Exception):
    """Key material could not be parsed."""


def _assertion(kind: str) -> bytes:
    return f"volact:{kind}:v{ENVELOPE_VERSION}".encode()


@dataclass(frozen=True, eq=False)
class VerifyKey:
    """An Ed25519 public key, as PASERK ``k4.public.…`` text."""

    _public: Ed25519PublicKey
    paserk: str
    key_id: str

    @classmethod
    def from_paserk(cls, text: str) -> VerifyKey:
        if not isinstance(text, str) or not text.startswith(_PUBLIC_PREFIX):
            raise KeyFormatError("a public key must be PASERK text starting with 'k4.public.'")
        try:
            raw = _b64decode(text[len(_PUBLIC_PREFIX) :])
            if len(raw) != 32:
                raise ValueError("an Ed25519 public key has 32 bytes")
            public = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise KeyFormatError(f"unreadable public key: {exc}") from None
        return cls(public, text, _paserk_id(text))

    @classmethod
    def _from_public(cls, public: Ed25519PublicKey) -> VerifyKey:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        paserk = _PUBLIC_PREFIX + _b64encode(raw)
        return cls(public, paserk, _paserk_id(paserk))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.paserk == self.paserk

    def __hash__(self) -> int:
        return hash(self.paserk)

    def __repr__(self) -> str:
        return f"VerifyKey({self.key_id})"


class SigningKey:
    """An Ed25519 private key. Its ``repr`` never shows the secret."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._paseto: Any = None  # pyseto's key object, made on first use (see sign)
        self.public_key = VerifyKey._from_public(private.public_key())
        self.key_id = self.public_key.key_id

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except Exception:
            raise KeyFormatError("the private key file is not an unencrypted PEM key") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFormatError("the private key is not an Ed25519 key")
        return cls(private)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id})"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    """Unpadded base64url, strictly (PASETO and PASERK use no padding)."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def _paserk_id(paserk: str) -> str:
    """The PASERK ``k4.pid`` of a ``k4.public`` key: BLAKE2b-264 over the prefix and the key."""
    digest = hashlib.blake2b((_PID_PREFIX + paserk).encode("ascii"), digest_size=33).digest()
    return _PID_PREFIX + _b64encode(digest)


def _pae(*pieces: bytes) -> bytes:
    """PASETO's pre-authentication encoding."""
    out = [struct.pack("<Q", len(pieces))]
    for piece in pieces:
        out += [struct.pack("<Q", len(piece)), piece]
    return b"".join(out)


# The same bytes as json.dumps(obj, separators=(",", ":"), sort_keys=True), with the encoder made
# once rather than on every call (a host signs a ticket per request).
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(obj).encode()


@functools.lru_cache(maxsize=256)
def _footer(key_id: str, kind: str) -> bytes:
    return _dumps({"kid": key_id, "typ": kind, "v": ENVELOPE_VERSION})


def sign(key: SigningKey, kind: str, payload: Mapping[str, Any]) -> str:
    """Sign ``payload`` as a token of ``kind``; returns the token text."""
    import pyseto

    if key._paseto is None:
        key._paseto = pyseto.Key.new(version=4, purpose="public", key=key.to_pem())
    token = pyseto.encode(
        key._paseto,
        _dumps(payload),
        footer=_footer(key.key_id, kind),
        implicit_assertion=_assertion(kind),
    )
    return bytes(token).decode("ascii")


def read_footer(token: str) -> dict[str, Any]:
    """The unverified footer of a token (to choose a key). Raises SignatureError if malformed."""
    if not isinstance(token, str) or not token.startswith(_HEADER) or len(token) > 16384:
        raise SignatureError("not a v4.public token")
    parts = token.split(".")
    if len(parts) != 4:
        raise SignatureError("token has no footer")
    try:
        footer = json.loads(_b64decode(parts[3]))
    except Exception:
        raise SignatureError("unreadable token footer") from None
    if not isinstance(footer, dict):
        raise SignatureError("token footer is not an object")
    return footer


def unverified_payload(token: str) -> bytes:
    """The payload bytes of a token WITHOUT verifying it (to find which keys to verify with)."""
    read_footer(token)
    body = token[len(_HEADER) :].split(".")[0]
    try:
        raw = _b64decode(body)
    except Exception:
        raise SignatureError("unreadable token body") from None
    # A v4.public body is the message followed by a 64-byte Ed25519 signature.
    if len(raw) < 64:
        raise SignatureError("token body is too short")
    return bytes(raw[:-64])


def verify(token: str, kind: str, keys: Iterable[VerifyKey]) -> dict[str, Any]:
    """Verify a token of ``kind`` against the key among ``keys`` named by its key id.

    Returns the payload object. Raises :class:`SignatureError` for every failure.
    """
    footer = read_footer(token)
    if footer.get("typ") != kind:
        raise SignatureError(f"token is a {footer.get('typ')!r}, expected {kind!r}")
    if footer.get("v") != ENVELOPE_VERSION:
        raise SignatureError(f"unsupported envelope version {footer.get('v')!r}")
    kid = footer.get("kid")
    key = next((k for k in keys if k.key_id == kid), None)
    if key is None:
        raise SignatureError(f"token signed by unknown key {kid!r}")
    _, _, body, footer_text = token.split(".")
    try:
        raw = _b64decode(body)
        if len(raw) < 64:
            raise ValueError("token body is too short")
        message, signature = raw[:-64], raw[-64:]
        signed = _pae(_HEADER.encode(), message, _b64decode(footer_text), _assertion(kind))
        key._public.verify(signature, signed)
        payload = json.loads(message)
    except (InvalidSignature, ValueError):
        raise SignatureError("signature verification failed") from None
    if not isinstance(payload, dict):
        raise SignatureError("token payload is not an object")
    return payload
