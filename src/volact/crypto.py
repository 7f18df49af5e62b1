"""The one module that touches the signing library.

Every signed object in volact is a PASETO ``v4.public`` token (Ed25519; the algorithm is fixed by
the version and purpose, so nothing in the input can choose it). On top of PASETO:

- the **footer** is JSON ``{"kid": <PASERK k4.pid of the signing key>, "typ": <kind>, "v": 1}``;
  the key id lets a verifier pick the right root key after a rotation;
- the **implicit assertion** is ``b"volact:<kind>:v1"``, so a token signed as one kind (say a
  host certificate) never verifies as another (a ticket), even under the same key;
- the **payload** is a JSON object; the library signs the bytes exactly as serialised, so there
  is no canonicalisation to get wrong.

Verification raises :class:`SignatureError` and never returns a bool.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyseto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

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

    _paseto: Any
    paserk: str
    key_id: str

    @classmethod
    def from_paserk(cls, text: str) -> VerifyKey:
        if not isinstance(text, str) or not text.startswith("k4.public."):
            raise KeyFormatError("a public key must be PASERK text starting with 'k4.public.'")
        try:
            key = pyseto.Key.from_paserk(text)
        except Exception as exc:  # the library raises several types for bad input
            raise KeyFormatError(f"unreadable public key: {exc}") from None
        return cls(key, text, key.to_paserk_id())

    @classmethod
    def _from_public(cls, public: Ed25519PublicKey) -> VerifyKey:
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key = pyseto.Key.new(version=4, purpose="public", key=pem)
        return cls(key, key.to_paserk(), key.to_paserk_id())

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
        pem = self.to_pem()
        self._paseto = pyseto.Key.new(version=4, purpose="public", key=pem)
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


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@functools.lru_cache(maxsize=256)
def _footer(key_id: str, kind: str) -> bytes:
    return _dumps({"kid": key_id, "typ": kind, "v": ENVELOPE_VERSION})


def sign(key: SigningKey, kind: str, payload: Mapping[str, Any]) -> str:
    """Sign ``payload`` as a token of ``kind``; returns the token text."""
    footer = _footer(key.key_id, kind)
    token = pyseto.encode(
        key._paseto, _dumps(payload), footer=footer, implicit_assertion=_assertion(kind)
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
        footer = json.loads(pyseto.utils.base64url_decode(parts[3]))
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
        raw = pyseto.utils.base64url_decode(body)
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
    try:
        decoded = pyseto.decode(key._paseto, token, implicit_assertion=_assertion(kind))
        raw = decoded.payload
        payload = json.loads(raw if isinstance(raw, bytes) else json.dumps(raw))
    except Exception:
        raise SignatureError("signature verification failed") from None
    if not isinstance(payload, dict):
        raise SignatureError("token payload is not an object")
    return payload
