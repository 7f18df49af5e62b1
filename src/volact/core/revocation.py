"""The vendor's revocation list: which host certificates no client may accept (issue 20).

Rules (docs/vendor.md and docs/security.md explain them for vendors and admins):

1. **The vendor signs it** with its active root key, as a PASETO ``v4.public`` token of kind
   ``revocation_list`` (so it can never pass for a certificate or a ticket). Its payload::

       {"v": 1, "vendor_id", "sequence", "issued_at", "next_update",
        "certificates": [{"cert_id", "reason", "revoked_at"}, …],
        "host_keys": [{"serial", "reason", "revoked_at"}, …]}

   A certificate is listed from the moment it is revoked or superseded until it expires (an
   expired certificate is refused anyway); a host key listed makes every certificate issued
   with it refused, whatever its id (listed until the last of them expires).
2. **The highest sequence wins, forever.** A holder (host or client) replaces its list only by
   one with a higher ``sequence`` (:func:`newest`); an older list, or the same one again,
   changes nothing. So no one can roll a client back to a list from before a revocation by
   showing it an old one.
3. **The list travels without phone-home**: vendor → host (online from the vendor service, or a
   file the admin installs: ``volact-revocation-list``, ``{"format", "v": 1, "token"}``), host →
   client (inside every activation answer, the field ``"revocations"``). ``next_update`` says
   when the vendor means to sign the next one; a list past it still holds (it only grows in
   sequence), and a host says so in its status so that its admin fetches a newer one.
4. A certificate on the list, or issued with a listed host key, is refused with
   ``host_revoked`` (:func:`check_certificate`).

Nothing here reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from volact import crypto
from volact.core import validate
from volact.core.errors import BadRequest, HostRevoked, NextStep, UnsupportedVersion, VolactError
from volact.core.tickets import HostCertificate

REVOCATION_LIST_KIND = "revocation_list"
REVOCATION_FILE_FORMAT = "volact-revocation-list"
VERSION = 1
FILE_VERSION = 1
# Every activation answer carries the list, and a client reads at most 64 KiB of an answer:
# the list stays well under that. A vendor with more to revoke revokes the host key instead
# (one entry), or uses short-lived certificates (entries drop out when the certificate ends).
MAX_ENTRIES = 256
MAX_TOKEN_CHARS = 48 * 1024
MAX_FILE_BYTES = 64 * 1024

SUPERSEDED = "superseded"
REASONS = (
    SUPERSEDED,  # the host id was certified again (another machine, or a new host key)
    "key_compromise",  # the host's signing key (or the host key) leaked
    "host_replaced",  # the machine was replaced or stolen
    "ceased",  # the customer stopped (paying, using the product)
    "unspecified",
)
REVOKE_REASONS = tuple(reason for reason in REASONS if reason != SUPERSEDED)


@dataclass(frozen=True)
class RevokedCertificate:
    cert_id: str
    reason: str
    revoked_at: int

    def to_dict(self) -> dict[str, Any]:
        return {"cert_id": self.cert_id, "reason": self.reason, "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class RevokedHostKey:
    serial: str
    reason: str
    revoked_at: int

    def to_dict(self) -> dict[str, Any]:
        return {"serial": self.serial, "reason": self.reason, "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class RevocationList:
    """One signed list (``token`` is set once signed or verified)."""

    vendor_id: str
    sequence: int
    issued_at: int
    next_update: int
    certificates: tuple[RevokedCertificate, ...] = ()
    host_keys: tuple[RevokedHostKey, ...] = ()
    token: str = field(default="", compare=False)

    def payload(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "vendor_id": self.vendor_id,
            "sequence": self.sequence,
            "issued_at": self.issued_at,
            "next_update": self.next_update,
            "certificates": [entry.to_dict() for entry in self.certificates],
            "host_keys": [entry.to_dict() for entry in self.host_keys],
        }

    def entry_for(self, certificate: HostCertificate) -> RevokedCertificate | RevokedHostKey | None:
        """Why ``certificate`` is refused by this list (None: it is not on it)."""
        for entry in self.certificates:
            if entry.cert_id == certificate.cert_id:
                return entry
        for key in self.host_keys:
            if key.serial == certificate.key_serial:
                return key
        return None

    def stale_at(self, now: int) -> bool:
        """Whether the vendor meant to have signed a newer list by ``now``."""
        return now > self.next_update

    def to_file(self) -> str:
        """The ``volact-revocation-list`` file of this (signed) list."""
        return revocation_file(self.token)


def sign_revocation_list(root: crypto.SigningKey, revocations: RevocationList) -> RevocationList:
    """Sign ``revocations`` with the vendor's root key; returns it with its token set."""
    if len(revocations.certificates) + len(revocations.host_keys) > MAX_ENTRIES:
        raise BadRequest(
            f"a revocation list holds at most {MAX_ENTRIES} entries",
            {"limit": MAX_ENTRIES},
            next_step=NextStep(
                cli="revoke the host key as a whole (`volact vendor revoke --host-key SERIAL`) "
                "or use shorter-lived certificates (`volact vendor certificate-lifetime`)",
                sdk="revoke the host key as a whole or use shorter-lived certificates",
            ),
        )
    if revocations.next_update <= revocations.issued_at:
        raise ValueError("next_update must be later than issued_at")
    return replace(
        revocations, token=crypto.sign(root, REVOCATION_LIST_KIND, revocations.payload())
    )


def _reason(data: dict[str, Any]) -> str:
    reason = validate.string(data, "reason", max_len=32)
    if reason not in REASONS:
        raise BadRequest(f"unknown revocation reason {reason!r}", {"field": "reason"})
    return reason


def _entries(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = data.get(name)
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise BadRequest(f"field {name!r} must be a list of at most {MAX_ENTRIES} entries")
    return [validate.obj(item, name) for item in value]


def _from_payload(data: dict[str, Any], token: str) -> RevocationList:
    if data.get("v") != VERSION:
        raise UnsupportedVersion(f"revocation list version {data.get('v')!r} is not supported")
    certificates = tuple(
        RevokedCertificate(
            validate.string(item, "cert_id", max_len=64),
            _reason(item),
            validate.integer(item, "revoked_at"),
        )
        for item in _entries(data, "certificates")
    )
    host_keys = tuple(
        RevokedHostKey(
            validate.string(item, "serial", max_len=64),
            _reason(item),
            validate.integer(item, "revoked_at"),
        )
        for item in _entries(data, "host_keys")
    )
    return RevocationList(
        vendor_id=validate.identifier(data, "vendor_id"),
        sequence=validate.integer(data, "sequence", minimum=1),
        issued_at=validate.integer(data, "issued_at"),
        next_update=validate.integer(data, "next_update"),
        certificates=certificates,
        host_keys=host_keys,
        token=token,
    )


def verify_revocation_list(
    token: str, root_keys: list[crypto.VerifyKey], *, vendor_id: str
) -> RevocationList:
    """The list in ``token``, checked: signed by one of ``root_keys``, of ``vendor_id``.

    Raises :class:`BadRequest` (or :class:`UnsupportedVersion`) naming what failed.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise BadRequest("a revocation list must be a token of at most 48 KiB")
    try:
        payload = crypto.verify(token, REVOCATION_LIST_KIND, root_keys)
    except crypto.SignatureError as exc:
        raise BadRequest(f"the revocation list does not verify: {exc}") from exc
    revocations = _from_payload(payload, token)
    if revocations.vendor_id != vendor_id:
        raise BadRequest(
            f"the revocation list is vendor {revocations.vendor_id!r}'s, not {vendor_id!r}'s"
        )
    return revocations


def newest(held: RevocationList | None, offered: RevocationList | None) -> RevocationList | None:
    """The list to keep (rule 2): ``offered`` only if its sequence is higher than ``held``'s."""
    if offered is None:
        return held
    if held is None or offered.sequence > held.sequence:
        return offered
    return held


def check_certificate(revocations: RevocationList | None, certificate: HostCertificate) -> None:
    """Raise :class:`HostRevoked` if ``revocations`` lists ``certificate`` or its host key."""
    if revocations is None:
        return
    entry = revocations.entry_for(certificate)
    if entry is None:
        return
    what = (
        f"host certificate {certificate.cert_id}"
        if isinstance(entry, RevokedCertificate)
        else f"host key {certificate.key_serial}"
    )
    raise HostRevoked(
        f"host {certificate.host_id} is on the vendor's revocation list ({what}: {entry.reason}, "
        f"list {revocations.sequence}); ask another host of your organisation",
        {
            "host_id": certificate.host_id,
            "cert_id": certificate.cert_id,
            "reason": entry.reason,
            "sequence": revocations.sequence,
        },
    )


# --- the file --------------------------------------------------------------------------------


def revocation_file(token: str) -> str:
    """The text of a ``volact-revocation-list`` file holding ``token``."""
    document = {"format": REVOCATION_FILE_FORMAT, "v": FILE_VERSION, "token": token}
    return json.dumps(document, indent=2) + "\n"


def read_revocation_file(source: str | bytes | Mapping[str, Any]) -> str:
    """The token of a ``volact-revocation-list`` file (not yet verified). Raises BadRequest."""
    if isinstance(source, str | bytes):
        if len(source) > MAX_FILE_BYTES:
            raise BadRequest("the file is too large to be a revocation list")
        try:
            decoded: Any = json.loads(source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("the file is not JSON; it is not a revocation list") from exc
    else:
        decoded = dict(source)
    data = validate.obj(decoded, "the revocation list file")
    if data.get("format") != REVOCATION_FILE_FORMAT:
        raise BadRequest(
            f"this is not a revocation list file (format {data.get('format')!r}, expected "
            f"{REVOCATION_FILE_FORMAT!r})"
        )
    if data.get("v") != FILE_VERSION:
        raise UnsupportedVersion(f"revocation list file version {data.get('v')!r} not supported")
    if set(data) - {"format", "v", "token"}:
        raise BadRequest("the revocation list file has unknown fields")
    try:
        return validate.string(data, "token", max_len=MAX_TOKEN_CHARS)
    except VolactError as exc:
        raise BadRequest(f"the revocation list file: {exc.message}") from exc
