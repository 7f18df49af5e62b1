"""The vendor's revocation list: which host certificates no client may accept (issue 20).

Rules (docs/vendor.md and docs/security.md explain them for vendors and admins):

1. **The vendor signs one list per host key** (the key that certified the hosts: one
   customer's) with its active root key, as a PASETO ``v4.public`` token of kind
   ``revocation_list`` (so it can never pass for a certificate or a ticket). Its payload::

       {"v": 2, "vendor_id", "host_key", "sequence", "issued_at", "next_update",
        "certificates": [{"cert_id", "reason", "revoked_at"}, …],
        "host_keys": [{"serial", "reason", "revoked_at"}, …]}

   Its ``certificates`` are only certificates issued with ``host_key`` (with ``host_keys``, at
   most :data:`MAX_ENTRIES` entries), so one customer's churn never fills another's list and no
   answer carries another customer's certificate ids. A certificate is listed from the moment
   it is revoked or superseded until it expires (an expired certificate is refused anyway).
   ``host_keys`` names the revoked host keys of the same customer: ``host_key`` itself once it
   is revoked, and the customer's other revoked keys (each entry refuses every certificate
   issued with that key, whatever its id, until the last of them expires), so that hosts
   re-certified with a customer's new key carry the revocation of its old one. A list's
   ``certificates`` judge only certificates of its own host key (:meth:`RevocationList.judges`):
   one key's list never stands in for another's; a ``host_keys`` entry only ever adds a refusal
   (:func:`check_certificate`'s ``others``). Version 1 (one list for all of a vendor's
   customers) is refused with ``unsupported_version``.
2. **The highest sequence wins, forever, per host key.** A holder (host or client) replaces its
   list of a host key only by one of the same host key with a higher ``sequence``
   (:func:`newest`); an older list, the same one again, or another key's, changes nothing. So
   no one can roll a client back to a list from before a revocation by showing it an old one.
3. **The list travels without phone-home**: vendor → host (online from the vendor service, or a
   file the admin installs: ``volact-revocation-list``, ``{"format", "v": 2, "token"}``), host →
   client (inside every activation answer, the field ``"revocations"``). ``next_update`` says
   when the vendor means to sign the next one; a list past it still holds (it only grows in
   sequence), and a host says so in its status so that its admin fetches a newer one.
4. A certificate on its key's list, or issued with a revoked host key, is refused with
   ``host_revoked`` (:func:`check_certificate`).

Nothing here reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from volact import crypto
from volact.core import validate
from volact.core.errors import BadRequest, HostRevoked, NextStep, UnsupportedVersion, VolactError
from volact.core.tickets import HostCertificate

REVOCATION_LIST_KIND = "revocation_list"
REVOCATION_FILE_FORMAT = "volact-revocation-list"
VERSION = 2
FILE_VERSION = 2
# Every activation answer carries the list of the answering host's key, and a client reads at
# most 64 KiB of an answer: the list stays well under that. The limit is per host key (one
# customer's); a vendor with more to revoke for one key revokes the host key instead (one
# entry), or uses short-lived certificates (entries drop out when the certificate ends).
MAX_ENTRIES = 256
_SERIAL = re.compile(r"^host-[0-9a-f]{24}$")  # a host key's serial (volact.core.keys)
_V1_NEXT_STEP = NextStep(
    cli="this list (v1) is from an older vendor service, one list for every customer; ask the "
    "vendor for its current list of your host key (`volact vendor revocations --host-key "
    "SERIAL -o FILE`), or let the host fetch it (`volact host fetch-revocations`)",
    sdk="ask the vendor for the current (v2) revocation list of your host key",
)
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
    host_key: str
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
            "host_key": self.host_key,
            "sequence": self.sequence,
            "issued_at": self.issued_at,
            "next_update": self.next_update,
            "certificates": [entry.to_dict() for entry in self.certificates],
            "host_keys": [entry.to_dict() for entry in self.host_keys],
        }

    def judges(self, certificate: HostCertificate) -> bool:
        """Whether this list is the one of ``certificate``'s host key (only then it judges it)."""
        return certificate.key_serial == self.host_key

    def entry_for(self, certificate: HostCertificate) -> RevokedCertificate | RevokedHostKey | None:
        """Why ``certificate`` is refused by this list (None: it is not on it). The list's
        certificates judge only certificates of its own host key; its revoked host keys refuse
        every certificate of those keys."""
        if self.judges(certificate):
            for entry in self.certificates:
                if entry.cert_id == certificate.cert_id:
                    return entry
        return self.key_entry(certificate.key_serial)

    def key_entry(self, serial: str) -> RevokedHostKey | None:
        """The entry revoking host key ``serial`` (None: this list does not revoke it)."""
        return next((key for key in self.host_keys if key.serial == serial), None)

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
            f"the revocation list of host key {revocations.host_key} would hold more than "
            f"{MAX_ENTRIES} entries (the limit of one host key's list)",
            {"limit": MAX_ENTRIES, "host_key": revocations.host_key},
            next_step=NextStep(
                cli="revoke the host key as a whole (`volact vendor revoke --host-key SERIAL`) "
                "or use shorter-lived certificates (`volact vendor certificate-lifetime`)",
                sdk="revoke the host key as a whole or use shorter-lived certificates",
            ),
        )
    if revocations.next_update <= revocations.issued_at:
        raise ValueError("next_update must be later than issued_at")
    if not _SERIAL.match(revocations.host_key) or not all(
        _SERIAL.match(key.serial) for key in revocations.host_keys
    ):
        raise ValueError("a revocation list names host keys by their serials (host-…)")
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


def _serial(data: dict[str, Any], name: str) -> str:
    value = validate.string(data, name, max_len=64)
    if not _SERIAL.match(value):
        raise BadRequest(f"field {name!r} is not a host key serial", {"field": name})
    return value


def _from_payload(data: dict[str, Any], token: str) -> RevocationList:
    if data.get("v") != VERSION:
        raise UnsupportedVersion(
            f"revocation list version {data.get('v')!r} is not supported (this volact reads "
            f"version {VERSION}: one list per host key)",
            {"version": data.get("v")},
            next_step=_V1_NEXT_STEP,
        )
    host_key = _serial(data, "host_key")
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
            _serial(item, "serial"),
            _reason(item),
            validate.integer(item, "revoked_at"),
        )
        for item in _entries(data, "host_keys")
    )
    return RevocationList(
        vendor_id=validate.identifier(data, "vendor_id"),
        host_key=host_key,
        sequence=validate.integer(data, "sequence", minimum=1),
        issued_at=validate.integer(data, "issued_at"),
        next_update=validate.integer(data, "next_update"),
        certificates=certificates,
        host_keys=host_keys,
        token=token,
    )


def verify_revocation_list(
    token: str, root_keys: list[crypto.VerifyKey], *, vendor_id: str, host_key: str | None = None
) -> RevocationList:
    """The list in ``token``, checked: signed by one of ``root_keys``, of ``vendor_id`` (and of
    ``host_key``, if given).

    Raises :class:`BadRequest` (or :class:`UnsupportedVersion`) naming what failed.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise BadRequest("a revocation list must be a token of at most 48 KiB")
    try:
        # A full list (MAX_ENTRIES) is about 33 KiB: over crypto's default limit for a token.
        payload = crypto.verify(token, REVOCATION_LIST_KIND, root_keys, max_chars=MAX_TOKEN_CHARS)
    except crypto.SignatureError as exc:
        raise BadRequest(f"the revocation list does not verify: {exc}") from exc
    revocations = _from_payload(payload, token)
    if revocations.vendor_id != vendor_id:
        raise BadRequest(
            f"the revocation list is vendor {revocations.vendor_id!r}'s, not {vendor_id!r}'s"
        )
    if host_key is not None and revocations.host_key != host_key:
        raise BadRequest(
            f"the revocation list is host key {revocations.host_key}'s, not {host_key}'s (this "
            "host's certificate was issued with that key)",
            {"host_key": revocations.host_key, "expected": host_key},
        )
    return revocations


def newest(held: RevocationList | None, offered: RevocationList | None) -> RevocationList | None:
    """The list to keep (rule 2): ``offered`` only if it is of the same host key as ``held`` and
    its sequence is higher (another key's list never replaces this key's)."""
    if offered is None:
        return held
    if held is not None and offered.host_key != held.host_key:
        return held
    if held is None or offered.sequence > held.sequence:
        return offered
    return held


def check_certificate(
    revocations: RevocationList | None,
    certificate: HostCertificate,
    others: tuple[RevocationList, ...] = (),
) -> None:
    """Raise :class:`HostRevoked` if ``revocations`` (the list of the certificate's own host
    key) lists ``certificate`` or its host key, or one of ``others`` (the lists of the same
    customer's other keys) revokes its host key.

    Another key's list never judges the certificate itself (one key's list never stands in for
    another's: a list passed as ``revocations`` that is not of the certificate's key is
    ignored); from ``others`` only a revoked host key counts, which only ever adds a refusal."""
    found: list[tuple[RevocationList, RevokedCertificate | RevokedHostKey]] = []
    if revocations is not None and revocations.judges(certificate):
        own = revocations.entry_for(certificate)
        if own is not None:
            found.append((revocations, own))
    for other in others:
        key = other.key_entry(certificate.key_serial)
        if key is not None:
            found.append((other, key))
    if not found:
        return
    revocations, entry = found[0]
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


def host_key_of_fetch(data: Any) -> str:
    """The host key serial a host asks the vendor service for the list of (``{"v": 2,
    "host_key": SERIAL}``, or the query ``?host_key=SERIAL``). Raises BadRequest."""
    fields = validate.obj(data, "the request")
    if fields.get("v", VERSION) != VERSION:
        raise UnsupportedVersion(
            f"revocation list request version {fields.get('v')!r} is not supported",
            {"version": fields.get("v")},
            next_step=_V1_NEXT_STEP,
        )
    serial = fields.get("host_key")
    if not isinstance(serial, str) or not _SERIAL.match(serial):
        raise BadRequest(
            "name the host key whose revocation list you want: host_key, a host key serial "
            "(host-…); each host key has its own list",
            {"field": "host_key"},
        )
    return serial


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
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:  # as offline.parse_file
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
        raise UnsupportedVersion(
            f"revocation list file version {data.get('v')!r} is not supported (this volact reads "
            f"version {FILE_VERSION}: one list per host key)",
            {"version": data.get("v")},
            next_step=_V1_NEXT_STEP,
        )
    if set(data) - {"format", "v", "token"}:
        raise BadRequest("the revocation list file has unknown fields")
    try:
        return validate.string(data, "token", max_len=MAX_TOKEN_CHARS)
    except VolactError as exc:
        raise BadRequest(f"the revocation list file: {exc.message}") from exc
