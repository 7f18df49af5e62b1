"""The vendor's root key in a PKCS#11 token (an HSM; tested with SoftHSM2).

A root key made with ``--hsm-module PATH --hsm-token LABEL`` (``volact vendor init`` or
``volact vendor root-key add``) is generated inside the token as an Ed25519 key pair
(``CKM_EC_EDWARDS_KEY_PAIR_GEN`` on the curve ``edwards25519``), private, sensitive and not
extractable; every root signature is a ``CKM_EDDSA`` operation of the token, and the private key
never leaves it. The vendor store records where the key is (:class:`TokenKey`: the module's
path, the token's label, the key's label and id), never the PIN, which comes from the
environment (``VOLACT_HSM_PIN``) each time the key is opened.

This is the only module that imports ``python-pkcs11`` (the ``hsm`` extra); it is imported
only for a root key held in a token.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from typing import Any

from volact import crypto
from volact.core.errors import ConfigurationError, StorageError

PIN_ENV = "VOLACT_HSM_PIN"
# DER of the OID 1.3.101.112 (id-Ed25519): the curve of CKA_EC_PARAMS for Ed25519 keys.
_ED25519_PARAMS = bytes.fromhex("06032b6570")


@dataclass(frozen=True)
class TokenKey:
    """Where a root key lives in a PKCS#11 token (what the vendor store keeps)."""

    module: str  # the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
    token: str  # the token's label
    label: str  # the key's label (CKA_LABEL)
    key_id: str  # the key's CKA_ID, hex

    def to_storage(self) -> str:
        return json.dumps({"kind": "pkcs11", **asdict(self)}, sort_keys=True)

    @classmethod
    def from_storage(cls, text: str) -> TokenKey:
        try:
            data = json.loads(text)
            if data.pop("kind") != "pkcs11":
                raise ValueError("not a PKCS#11 location")
            return cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise StorageError(f"the vendor store's root key location is damaged: {exc}") from exc


@dataclass(frozen=True)
class TokenChoice:
    """A token chosen on the command line for a new root key."""

    module: str
    token: str


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as exc:
        raise ConfigurationError(
            "a root key in an HSM needs python-pkcs11: pip install 'volact[hsm]'"
        ) from exc
    return pkcs11


def _pin() -> str:
    pin = os.environ.get(PIN_ENV)
    if not pin:
        raise ConfigurationError(
            f"the root key is in an HSM: set {PIN_ENV} to the token's user PIN"
        )
    return pin


class _Session:
    """One open, logged-in session of a token; signatures are serialised (PKCS#11 sessions are
    not to be used by two threads at once)."""

    def __init__(self, module: str, token: str) -> None:
        pkcs11 = _pkcs11()
        try:
            library = pkcs11.lib(module)
        except (pkcs11.PKCS11Error, RuntimeError) as exc:  # no such file, not a PKCS#11 library
            raise ConfigurationError(f"cannot load the PKCS#11 module {module}: {exc}") from exc
        try:
            found = library.get_token(token_label=token)
            self.session = found.open(user_pin=_pin(), rw=True)
        except pkcs11.PKCS11Error as exc:
            raise StorageError(
                f"cannot open the HSM token {token!r} with {module}: "
                f"{type(exc).__name__} {exc}".strip()
            ) from exc
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            self.session.close()


def _public_key(point: bytes) -> crypto.VerifyKey:
    """The key of a CKA_EC_POINT: a DER OCTET STRING of the 32 bytes (or the bare bytes)."""
    raw = point[2:] if len(point) == 34 and point[:2] == b"\x04\x20" else point
    try:
        return crypto.VerifyKey.from_raw(raw)
    except crypto.KeyFormatError as exc:
        raise StorageError(f"the HSM's public key is not an Ed25519 key: {exc}") from exc


class TokenKeys:
    """The PKCS#11 root keys of one vendor process: sessions opened on first use, kept."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], _Session] = {}

    def _session(self, module: str, token: str) -> _Session:
        session = self._sessions.get((module, token))
        if session is None:
            session = self._sessions[module, token] = _Session(module, token)
        return session

    def generate(self, choice: TokenChoice, label: str, key_id: bytes) -> tuple[TokenKey, Any]:
        """Generate an Ed25519 key pair in the token; its location and signing key."""
        pkcs11 = _pkcs11()
        from pkcs11 import Attribute, KeyType, Mechanism

        session = self._session(choice.module, choice.token)
        try:
            with session.lock:
                public, _ = session.session.generate_keypair(
                    KeyType.EC_EDWARDS,
                    0,
                    mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                    store=True,
                    label=label,
                    id=key_id,
                    public_template={Attribute.EC_PARAMS: _ED25519_PARAMS},
                    private_template={
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.PRIVATE: True,
                    },
                )
                point = public[Attribute.EC_POINT]
        except pkcs11.PKCS11Error as exc:
            raise StorageError(
                f"the HSM token {choice.token!r} could not make an Ed25519 key "
                f"(CKM_EC_EDWARDS_KEY_PAIR_GEN): {type(exc).__name__}"
            ) from exc
        location = TokenKey(choice.module, choice.token, label, key_id.hex())
        return location, self._signing_key(location, _public_key(point))

    def open(self, location: TokenKey, public_key: str) -> crypto.SigningKey:
        """The signing key of a root key in a token (checked against the recorded key)."""
        expected = crypto.VerifyKey.from_paserk(public_key)
        return self._signing_key(location, expected)

    def _signing_key(self, location: TokenKey, public: crypto.VerifyKey) -> crypto.SigningKey:
        pkcs11 = _pkcs11()
        from pkcs11 import KeyType, Mechanism, ObjectClass

        session = self._session(location.module, location.token)
        try:
            with session.lock:
                private = session.session.get_key(
                    object_class=ObjectClass.PRIVATE_KEY,
                    key_type=KeyType.EC_EDWARDS,
                    id=bytes.fromhex(location.key_id),
                    label=location.label,
                )
        except pkcs11.PKCS11Error as exc:
            raise StorageError(
                f"the HSM token {location.token!r} holds no root key {location.label!r} "
                f"({type(exc).__name__})"
            ) from exc

        def sign(data: bytes) -> bytes:
            try:
                with session.lock:
                    signature: bytes = private.sign(data, mechanism=Mechanism.EDDSA)
            except pkcs11.PKCS11Error as exc:
                raise StorageError(
                    f"the HSM could not sign (CKM_EDDSA): {type(exc).__name__}"
                ) from exc
            return signature

        return crypto.SigningKey.external(public, sign)

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
