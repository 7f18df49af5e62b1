"""The one module that touches signing: PASETO ``v4.public`` with Ed25519.

Every signed object in volact is a PASETO ``v4.public`` token (Ed25519; the algorithm is fixed by
the version and purpose, so nothing in the input can choose it). On top of PASETO:

- the **footer** is JSON ``{"kid": <PASERK k4.pid of the signing key>, "typ": <kind>, "v": 1}``;
  the key id lets a verifier pick the right root key after a rotation;
- the **implicit assertion** is ``b"volact:<kind>:v1"``, so a token signed as one kind (say a
  host certificate) never verifies as another (a ticket), even under the same key;
- the **payload** is a JSON object; the signature covers the bytes exactly as serialised, so
  there is no canonicalisation to get wrong.

``v4.public`` is two steps over one primitive: the pre-authentication encoding (PAE) of the
header, message, footer and implicit assertion, then one Ed25519 signature (or verification) of
it. Keys, PEM files and verification are cryptography's; signatures are made by libsodium
(PyNaCl, the same maintainers), about 1.5 times as fast as OpenSSL's Ed25519 on the machines
we measured (22 against 35 µs), which matters on a host that signs a ticket per request.
Ed25519 signatures are deterministic, so the two give the same bytes (tested).

Both directions are written out here (about twenty lines) rather than taken from a PASETO
library: pyseto costs about 0.1 s to import (every ``volact client status``
verifies two tokens) and about 15 µs of Python per signature (a host signs a ticket per
request). ``tests/test_crypto.py`` checks them against the PASETO standard's test vectors
(4-S-1 to 4-S-3, byte for byte: Ed25519 is deterministic) and against pyseto in both
directions. Verification raises :class:`SignatureError`, never returns a bool.

One more primitive lives here, :func:`secret_proof`: an HMAC-SHA256 under a key derived with
HKDF-SHA256 (cryptography's) from a secret both sides know, so a host activation request
proves the host key without holding it.

Payloads and footers are serialised with orjson (sorted keys, compact), which is several times
faster than the standard library's encoder; a payload holds only strings, integers, booleans,
None, lists and string-keyed objects.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# orjson (with the datetime, uuid and platform modules it loads) and cryptography's HMAC and
# HKDF are imported by the functions that sign or prove: verifying a token, all that a client's
# status() does, needs neither (issue 18: an app's start-up).

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_PUBLIC_PREFIX = "k4.public."
_PID_PREFIX = "k4.pid."

ENVELOPE_VERSION = 1
_HEADER = "v4.public."
_HEADER_BYTES = _HEADER.encode("ascii")


class SignatureError(Exception):
    """A token is malformed, of the wrong kind, signed by an unknown key, or its signature fails."""


class KeyFormatError(Exception):
    """Key material could not be parsed."""


@functools.lru_cache(maxsize=64)
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
            raise KeyFormatError(f"unreadable public key: {exc}") from exc
        return cls(public, text, _paserk_id(text))

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        """The key of 32 raw Ed25519 public key bytes (as a PKCS#11 token gives them)."""
        try:
            return cls._from_public(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise KeyFormatError(f"unreadable public key: {exc}") from exc

    @classmethod
    def _from_public(cls, public: Ed25519PublicKey) -> VerifyKey:
        from cryptography.hazmat.primitives import serialization  # only with private keys

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
    """An Ed25519 private key. Its ``repr`` never shows the secret.

    A key held elsewhere (a PKCS#11 token: :mod:`volact.authority.hsm`) is made with
    :meth:`external`: it knows only the public key and a function that signs, so the private
    key never enters this process.
    """

    _external: Callable[[bytes], bytes] | None = None

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._sodium: bytes | None = None  # libsodium's 64-byte secret key, made on first use
        self.public_key = VerifyKey._from_public(private.public_key())
        self.key_id = self.public_key.key_id

    @classmethod
    def external(cls, public_key: VerifyKey, sign: Callable[[bytes], bytes]) -> SigningKey:
        """A key whose signatures ``sign`` makes (64-byte Ed25519 signatures of its input).

        Every signature is checked against ``public_key`` before it is used, so a token that
        signs with another key, or garbage, fails here rather than at every verifier.
        """
        key = cls.__new__(cls)
        key._external = sign
        key._sodium = None
        key.public_key = public_key
        key.key_id = public_key.key_id
        return key

    @property
    def is_external(self) -> bool:
        return self._external is not None

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        from cryptography.hazmat.primitives import serialization  # only with private keys

        try:
            private = serialization.load_pem_private_key(data, password=None)
        except Exception as exc:
            raise KeyFormatError("the private key file is not an unencrypted PEM key") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFormatError("the private key is not an Ed25519 key")
        return cls(private)

    def to_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization  # only with private keys

        if self._external is not None:
            raise KeyFormatError("this key is held in a token; its private part cannot be read")
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
        raise ValueError(str(exc)) from exc


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


def _dumps(obj: Mapping[str, Any]) -> bytes:
    """Compact JSON with sorted keys (non-ASCII text as UTF-8, not ``\\u`` escapes)."""
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


@functools.lru_cache(maxsize=256)
def _footer(key_id: str, kind: str) -> bytes:
    return _dumps({"kid": key_id, "typ": kind, "v": ENVELOPE_VERSION})


def ed25519_sign(key: SigningKey, data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``data``: the token's, for a key held in a PKCS#11
    token; else libsodium's, which releases the interpreter lock, when PyNaCl is installed (the
    host and vendor extras bring it); else cryptography's."""
    if key._external is not None:
        signature = key._external(data)
        try:
            key.public_key._public.verify(signature, data)
        except InvalidSignature as exc:
            raise SignatureError("the token's signature does not verify under its key") from exc
        return signature
    try:
        import nacl.bindings  # imported on first use: a client that only verifies never needs it
    except ImportError:
        return key._private.sign(data)
    from cryptography.hazmat.primitives import serialization

    if key._sodium is None:
        seed = key._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        key._sodium = nacl.bindings.crypto_sign_seed_keypair(seed)[1]
    signed: bytes = nacl.bindings.crypto_sign(data, key._sodium)
    return signed[:64]  # libsodium returns the signature followed by the message


def sign_message(
    key: SigningKey, message: bytes, footer: bytes = b"", implicit_assertion: bytes = b""
) -> str:
    """PASETO ``v4.public`` Sign: the token of ``message`` with ``footer`` (possibly empty).

    The building block of :func:`sign`, public so that tests can run the standard's vectors.
    """
    signature = ed25519_sign(key, _pae(_HEADER_BYTES, message, footer, implicit_assertion))
    token = _HEADER + _b64encode(message + signature)
    return f"{token}.{_b64encode(footer)}" if footer else token


def sign(key: SigningKey, kind: str, payload: Mapping[str, Any]) -> str:
    """Sign ``payload`` as a token of ``kind``; returns the token text."""
    return sign_message(key, _dumps(payload), _footer(key.key_id, kind), _assertion(kind))


MAX_TOKEN_CHARS = 16384


def read_footer(token: str, *, max_chars: int = MAX_TOKEN_CHARS) -> dict[str, Any]:
    """The unverified footer of a token (to choose a key). Raises SignatureError if malformed.

    A token longer than ``max_chars`` (16 KiB unless the caller, knowing its kind, allows more)
    is refused unread."""
    if not isinstance(token, str) or not token.startswith(_HEADER) or len(token) > max_chars:
        raise SignatureError("not a v4.public token")
    parts = token.split(".")
    if len(parts) != 4:
        raise SignatureError("token has no footer")
    try:
        footer = json.loads(_b64decode(parts[3]))
    except Exception as exc:
        raise SignatureError("unreadable token footer") from exc
    if not isinstance(footer, dict):
        raise SignatureError("token footer is not an object")
    return footer


def unverified_payload(token: str) -> bytes:
    """The payload bytes of a token WITHOUT verifying it (to find which keys to verify with)."""
    read_footer(token)
    body = token[len(_HEADER) :].split(".")[0]
    try:
        raw = _b64decode(body)
    except Exception as exc:
        raise SignatureError("unreadable token body") from exc
    # A v4.public body is the message followed by a 64-byte Ed25519 signature.
    if len(raw) < 64:
        raise SignatureError("token body is too short")
    return bytes(raw[:-64])


def verify(
    token: str, kind: str, keys: Iterable[VerifyKey], *, max_chars: int = MAX_TOKEN_CHARS
) -> dict[str, Any]:
    """Verify a token of ``kind`` against the key among ``keys`` named by its key id.

    Returns the payload object. Raises :class:`SignatureError` for every failure (a token over
    ``max_chars`` too).
    """
    footer = read_footer(token, max_chars=max_chars)
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
        signed = _pae(_HEADER_BYTES, message, _b64decode(footer_text), _assertion(kind))
        key._public.verify(signature, signed)
        payload = json.loads(message)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("signature verification failed") from exc
    if not isinstance(payload, dict):
        raise SignatureError("token payload is not an object")
    return payload


# --- proof of a shared secret ---------------------------------------------------------------


def secret_proof(secret: str, purpose: str, message: Mapping[str, Any]) -> str:
    """An HMAC-SHA256 of ``message`` (serialised as payloads are) under a key derived from
    ``secret`` with HKDF-SHA256 for ``purpose``; base64url. It shows that the maker knows the
    secret without containing it (the vendor, which knows the secret too, makes the same one)."""
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode("utf-8")
    ).derive(secret.encode("utf-8"))
    code = hmac.HMAC(derived, hashes.SHA256())
    code.update(_dumps(message))
    return _b64encode(code.finalize())


def proof_matches(proof: str, secret: str, purpose: str, message: Mapping[str, Any]) -> bool:
    """Whether ``proof`` is :func:`secret_proof` of ``message`` (in constant time)."""
    import hmac as stdlib_hmac  # the host's and the vendor's check

    expected = secret_proof(secret, purpose, message)
    return stdlib_hmac.compare_digest(proof.encode("ascii", "replace"), expected.encode("ascii"))
