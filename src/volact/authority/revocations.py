"""The vendor's side of the host trust lifecycle: supersession, revocation and the signed list,
certificate lifetimes and renewal.

:class:`TrustLifecycle` is part of :class:`~volact.authority.operations.Vendor`. Rules (the
list format is :mod:`volact.core.revocation`; the store's tables
:mod:`volact.authority.certifications`):

1. **Certifying a host id again supersedes its live certificate** (same transaction): the old
   certificate ends ``superseded`` and is named by the next revocation list, so a machine that
   was given a certified host's ``host_id`` replaces that host rather than adding one. A host
   key therefore never has more live (unexpired, not ended) certificates than its host limit.
   The host id's certificates that ended ``renewed`` and have not expired are superseded too
   (a renewal leaves its predecessor valid: the old machine would fall back to it).
2. **A revocation is the vendor's decision, with a reason** (:data:`~volact.core.revocation.
   REVOKE_REASONS`): one host (the certificate named and the other unexpired certificates of
   its host id and signing key, live or renewed: its renewals), or a host key as a whole
   (every certificate issued with it, and no certification with it from then on:
   ``key_revoked``). A revoked host key is named by its own list and by the lists of the
   customer's other host keys (re-signed at once; as room allows, after a list's own entries),
   so that hosts re-certified with the customer's new key carry it.
3. **There is one list per host key** (one customer's: its own sequence, at most
   :data:`~volact.core.revocation.MAX_ENTRIES` entries), and **every change signs a new list
   of the key it concerns** (sequence + 1) inside the transaction that made the change, so the
   newest list of a key always names every superseded and revoked certificate of that key that
   has not expired. One customer's churn never fills another's list. A list also gets
   re-signed, unchanged but for its sequence and dates, once it is half-way to its
   ``next_update`` when someone asks for the newest (:meth:`TrustLifecycle.revocation_list`).
4. **Certificates live as long as the vendor's policy says** (``volact vendor
   certificate-lifetime``; default two years; e.g. 90 days for short-lived certificates), and
   a live certificate is renewed with proof of possession of its host key
   (:mod:`volact.core.host_renewal`): same host id and key, a new certificate id and
   lifetime, the group policies as they are now; the old certificate ends ``renewed`` (not
   listed: tickets it signed stay good). A renewal counts nothing. A renewal before it is due
   (:func:`~volact.core.host_renewal.due_at`) is refused (``rate_limited``) while a
   certificate the host renewed has not expired: revoking the host lists those too (rule 2),
   and a host renewing in a loop would otherwise overflow the list. A retry with the
   certificate a renewal replaced (the answer was lost) is answered once while the one it was
   renewed to is live (:meth:`TrustLifecycle._unanswered_renewal`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from volact.authority import certifications as tables
from volact.authority import issuance
from volact.authority.catalogue import Catalogue
from volact.authority.records import KeyRecord
from volact.core import host_renewal, offline, revocation
from volact.core.durations import DAY, format_duration
from volact.core.errors import (
    BadRequest,
    ConfigurationError,
    HostNotActivated,
    HostRevoked,
    KeyRevoked,
    NotFound,
    RateLimited,
    ReplayedRequest,
)
from volact.core.policy import DEFAULT_CERTIFICATE_LIFETIME
from volact.core.revocation import RevocationList, RevokedCertificate, RevokedHostKey
from volact.core.tickets import issue_certificate
from volact.crypto import VerifyKey

REVOCATION_LIST_LIFETIME = 7 * DAY
CERTIFICATE_LIFETIME_BOUNDS = (2 * DAY, 730 * DAY)
_LIFETIME_SETTING = "certificate_lifetime"


def check_reason(reason: str) -> str:
    if reason not in revocation.REVOKE_REASONS:
        raise BadRequest(
            f"--reason must be one of {', '.join(revocation.REVOKE_REASONS)}",
            {"field": "reason"},
        )
    return reason


class TrustLifecycle(Catalogue):
    """Supersession, revocation and the revocation list of one vendor."""

    def _require_key_not_revoked(self, serial: str) -> None:
        revoked = self.store.key_revocation(serial)
        if revoked is not None:
            raise KeyRevoked(
                f"host key {serial} was revoked by the vendor ({revoked[1]}); ask the vendor for "
                "a new host key",
                {"serial": serial, "reason": revoked[1]},
            )

    def _supersede(self, serial: str, host_id: str, replaced_by: str, now: int) -> int:
        """End the live certificates of ``host_id`` as superseded by ``replaced_by`` (rule 1);
        how many certificates the list must now name. Runs inside the caller's transaction."""
        ended = [
            row["cert_id"]
            for row in self.store.live_certifications(serial, now)
            if row["host_id"] == host_id and row["cert_id"] != replaced_by
        ]
        for cert_id in ended:
            self.store.end_certification(
                cert_id, now, tables.ENDED_SUPERSEDED, replaced_by=replaced_by
            )
        # A renewal leaves the certificate it replaced valid until it expires: the host id's
        # renewed certificates are superseded too, or its old machine would fall back to one.
        return len(ended) + self.store.supersede_renewed(serial, host_id, replaced_by, now)

    def _sign_revocation_list(self, serial: str, now: int) -> RevocationList:
        """Sign and record the next list of host key ``serial`` (rule 3); inside the caller's
        transaction."""
        latest = self.store.latest_revocation_list(serial)
        host_keys = tuple(
            RevokedHostKey(row["serial"], str(row["revocation_reason"]), int(row["revoked_at"]))
            for row in self.store.revoked_keys(serial, now)
        )
        # A revoked host key's certificates are refused by its one entry.
        certificates = (
            ()
            if any(key.serial == serial for key in host_keys)
            else tuple(
                RevokedCertificate(
                    row["cert_id"],
                    revocation.SUPERSEDED
                    if row["end_reason"] == tables.ENDED_SUPERSEDED
                    else str(row["revocation_reason"] or "unspecified"),
                    int(row["ended_at"]),
                )
                for row in self.store.listed_certifications(serial, now)
            )
        )
        # The customer's other revoked keys go in as room allows: this key's own entries come
        # first, and a full list must still be signed (or its hosts could fetch none).
        own = tuple(key for key in host_keys if key.serial == serial)
        room = max(revocation.MAX_ENTRIES - len(certificates) - len(own), 0)
        host_keys = own + tuple(key for key in host_keys if key.serial != serial)[:room]
        _, root = self._active_root_key()
        signed = revocation.sign_revocation_list(
            root,
            RevocationList(
                vendor_id=self.vendor_id,
                host_key=serial,
                sequence=(latest[0] if latest else 0) + 1,
                issued_at=now,
                next_update=now + REVOCATION_LIST_LIFETIME,
                certificates=certificates,
                host_keys=host_keys,
            ),
        )
        self.store.add_revocation_list(
            serial, signed.sequence, now, signed.next_update, signed.token
        )
        return signed

    def host_key_serial(self, text: str) -> str:
        """The serial of host key ``text`` (a serial or the key): NotFound/BadRequest if it is
        none of this vendor's host keys."""
        record = self.find_key(text)
        if record.channel != "host":
            raise BadRequest(
                f"{record.serial} is a {record.channel} key; revocation lists are of host keys"
            )
        return record.serial

    def revocation_list(self, host_key: str) -> RevocationList:
        """The newest list of ``host_key`` (a serial or the key), signed anew first if there is
        none or it is half-way to its ``next_update`` (so hosts that fetch it on schedule never
        hold a stale one)."""
        serial = self.host_key_serial(host_key)
        now = self.clock()
        with self.lock:
            latest = self.store.latest_revocation_list(serial)
            if latest is not None and now < latest[2] - REVOCATION_LIST_LIFETIME // 2:
                return self._read_list(latest[3], serial)
            with self.store.transaction():
                # another process may have signed
                latest = self.store.latest_revocation_list(serial)
                if latest is not None and now < latest[2] - REVOCATION_LIST_LIFETIME // 2:
                    return self._read_list(latest[3], serial)
                return self._sign_revocation_list(serial, now)

    def _read_list(self, token: str, serial: str) -> RevocationList:
        keys = [record.public_key for record in self.store.root_keys()]
        return revocation.verify_revocation_list(
            token,
            [VerifyKey.from_paserk(key) for key in keys],
            vendor_id=self.vendor_id,
            host_key=serial,
        )

    def revoke_certificate(self, cert_id: str, reason: str) -> RevocationList:
        """Revoke one host certificate (rule 2); returns the new list that names it."""
        check_reason(reason)
        with self.lock, self.store.transaction():
            found = self.store.certification(cert_id)
            if found is None:
                raise NotFound(
                    f"no host certificate {cert_id!r}; `volact vendor key show HOST-KEY` lists a "
                    "key's certificates",
                    {"cert_id": cert_id},
                )
            now = self.clock()
            # The host's other certificates (those a renewal left valid, and its renewal):
            # revoked with it, or the host would fall back to one.
            for listed in self.store.lineage(cert_id, now):
                self.store.revoke_listed_certification(listed, now, reason)
            return self._sign_revocation_list(str(found["serial"]), now)

    def revoke_host_key(self, text: str, reason: str) -> tuple[RevocationList, int]:
        """Revoke a host key and every certificate issued with it (rule 2); returns the new
        list and how many live certificates it ended."""
        check_reason(reason)
        record = self.find_key(text)
        if record.channel != "host":
            raise BadRequest(
                f"{record.serial} is a {record.channel} key; only host keys are revoked here"
            )
        with self.lock, self.store.transaction():
            now = self.clock()
            live = self.store.live_certifications(record.serial, now)
            for row in live:
                self.store.revoke_listed_certification(row["cert_id"], now, reason)
            self.store.revoke_key(record.serial, now, reason)
            # The customer's other keys' lists name it too: hosts re-certified with the
            # customer's new key carry the old key's revocation to their clients.
            for other in self.store.customer_host_keys(record.serial):
                self._sign_revocation_list(other, now)
            return self._sign_revocation_list(record.serial, now), len(live)

    def _issue_host_certificate(
        self,
        key: KeyRecord,
        *,
        request_id: str,
        host_id: str,
        host_key: str,
        machine: str,
        via: str,
        address: str | None,
        now: int,
        kind: str,
        new_host: bool = False,
    ) -> tuple[offline.HostActivationResponse, str]:
        """Issue (and record) a certificate of ``host_key`` for ``host_id`` under host key
        ``key``, with the groups' policies as they are now and the vendor's certificate
        lifetime; the signed response and the new cert id. The one way a certification and a
        renewal make a certificate; inside the caller's transaction."""
        cert_id = str(uuid.UUID(bytes=self.random_bytes(16), version=4))
        root_record, root = self._active_root_key()
        certificate = issue_certificate(
            root,
            issuance.build_certificate(
                cert_id=cert_id,
                vendor_id=self.vendor_id,
                host_id=host_id,
                host_key=host_key,
                customer=key.customer or "",
                key_serial=key.serial,
                groups={group: self.group(group).policy for group in key.groups},
                now=now,
                lifetime=self.certificate_lifetime(),
            ),
        )
        response = offline.sign_host_response(
            root,
            offline.HostActivationResponse(
                request_id=request_id,
                host_id=host_id,
                vendor_id=self.vendor_id,
                vendor_name=self.vendor_name,
                root_keys=self.listed_root_keys(),
                certificate=certificate.token,
            ),
        )
        self.store.record_certification(
            serial=key.serial,
            request_id=request_id,
            host_id=host_id,
            host_key=host_key,
            machine=machine,
            cert_id=cert_id,
            root_key_id=root_record.key_id,
            via=via,
            address=address,
            issued_at=now,
            not_after=certificate.not_after,
            new_host=new_host,
            kind=kind,
        )
        return response, cert_id

    # --- certificate lifetime and renewal (rule 4) -------------------------------------------

    def certificate_lifetime(self) -> int:
        """How long the certificates issued from now on live (seconds)."""
        value = self.store.setting(_LIFETIME_SETTING)
        return DEFAULT_CERTIFICATE_LIFETIME if value is None else int(value)

    def set_certificate_lifetime(self, seconds: int) -> int:
        low, high = CERTIFICATE_LIFETIME_BOUNDS
        if not low <= seconds <= high:
            raise ConfigurationError(
                f"a certificate lifetime of {format_duration(seconds)} is outside "
                f"{format_duration(low)}–{format_duration(high)}"
            )
        with self.lock, self.store.transaction():
            self.store.put_setting(_LIFETIME_SETTING, str(seconds))
        return seconds

    def _unanswered_renewal(self, row: Mapping[str, Any], now: int) -> str | None:
        """For a certificate that ended ``renewed``: the live certificate it was renewed to,
        which the host asking again with the old one evidently never received (the answer was
        lost); None otherwise. Such a retry is answered, and that certificate ends in turn: so
        each certificate is retried at most once (and early only under rule 4's limit)."""
        if row["end_reason"] != tables.ENDED_RENEWED or row["replaced_by"] is None:
            return None
        successor = self.store.certification(str(row["replaced_by"]))
        if (
            successor is None
            or successor["kind"] != tables.KIND_RENEWAL
            or successor["ended_at"] is not None
            or int(successor["not_after"]) <= now
        ):
            return None
        return str(successor["cert_id"])

    def renew_host(
        self,
        source: str | bytes | Mapping[str, Any],
        *,
        via: str,
        address: str | None = None,
    ) -> offline.HostActivationResponse:
        """Answer a host renewal request (a file's text or the online body) with a response."""
        root_keys = [VerifyKey.from_paserk(key) for key in self.listed_root_keys()]
        request, current = host_renewal.read_renewal_request(
            source,
            root_keys,
            vendor_id=self.vendor_id,
        )
        with self.lock, self.store.transaction():
            if self.store.request_seen(request.request_id):
                raise ReplayedRequest(
                    "this renewal request was answered already; make a new one on the host",
                    {"request_id": request.request_id},
                )
            self._require_key_not_revoked(current.key_serial)
            row = self.store.certification(current.cert_id)
            if row is None:
                raise NotFound(
                    f"host certificate {current.cert_id} is not in this vendor's records"
                )
            now = self.clock()
            lost = self._unanswered_renewal(row, now)
            if row["end_reason"] is not None and lost is None:
                raise HostRevoked(
                    f"host certificate {current.cert_id} cannot be renewed: it was "
                    f"{row['end_reason']}"
                    + (f" ({row['revocation_reason']})" if row["revocation_reason"] else "")
                    + "; certify the host again (`volact host activate`) if the vendor allows",
                    {"cert_id": current.cert_id, "reason": row["end_reason"]},
                )
            if now > current.not_after:
                raise HostNotActivated(
                    "the host certificate has expired and cannot be renewed; certify the host "
                    "again (`volact host activate`)",
                    {"cert_id": current.cert_id},
                )
            if not host_renewal.renewal_due(current, now) and self.store.renewed_in_lineage(
                current.cert_id, now
            ):
                due = host_renewal.due_at(current)
                raise RateLimited(
                    f"host {current.host_id} renewed early already (its previous certificate "
                    f"is still valid); a host renews early once, then once it is due (in "
                    f"{format_duration(due - now)})",
                    {"cert_id": current.cert_id, "due": due},
                )
            key = self.store.key(current.key_serial)
            assert key is not None
            response, cert_id = self._issue_host_certificate(
                key,
                request_id=request.request_id,
                host_id=current.host_id,
                host_key=current.host_key,
                machine=str(row["machine"]),
                via=via,
                address=address,
                now=now,
                kind=tables.KIND_RENEWAL,
            )
            for ended in (current.cert_id, lost):
                if ended is not None:
                    self.store.end_certification(
                        ended, now, tables.ENDED_RENEWED, replaced_by=cert_id
                    )
        return response
