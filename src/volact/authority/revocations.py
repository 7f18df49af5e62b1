"""The vendor's side of the host trust lifecycle: supersession, revocation and the signed list.

:class:`TrustLifecycle` is part of :class:`~volact.authority.operations.Vendor`. Rules (the
list format is :mod:`volact.core.revocation`; the store's tables
:mod:`volact.authority.certifications`):

1. **Certifying a host id again supersedes its live certificate** (same transaction): the old
   certificate ends ``superseded`` and is named by the next revocation list, so a machine that
   was given a certified host's ``host_id`` replaces that host rather than adding one. A host
   key therefore never has more live (unexpired, not ended) certificates than its host limit.
2. **A revocation is the vendor's decision, with a reason** (:data:`~volact.core.revocation.
   REVOKE_REASONS`): one certificate, or a host key as a whole (every certificate issued with
   it, and no certification with it from then on: ``key_revoked``).
3. **Every change signs a new list** (sequence + 1) inside the transaction that made the
   change, so the newest list always names every superseded and revoked certificate that has
   not expired. A list also gets re-signed, unchanged but for its sequence and dates, once it is
   half-way to its ``next_update`` when someone asks for the newest
   (:meth:`TrustLifecycle.revocation_list`).
"""

from __future__ import annotations

from volact.authority import certifications as tables
from volact.authority.catalogue import Catalogue
from volact.core import revocation
from volact.core.durations import DAY
from volact.core.errors import BadRequest, KeyRevoked, NotFound
from volact.core.revocation import RevocationList, RevokedCertificate, RevokedHostKey
from volact.crypto import VerifyKey

REVOCATION_LIST_LIFETIME = 7 * DAY


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

    def _supersede(self, serial: str, host_id: str, replaced_by: str, now: int) -> list[str]:
        """End the live certificates of ``host_id`` as superseded by ``replaced_by`` (rule 1);
        the ids ended. Runs inside the caller's transaction."""
        ended = [
            row["cert_id"]
            for row in self.store.live_certifications(serial, now)
            if row["host_id"] == host_id and row["cert_id"] != replaced_by
        ]
        for cert_id in ended:
            self.store.end_certification(
                cert_id, now, tables.ENDED_SUPERSEDED, replaced_by=replaced_by
            )
        return ended

    def _sign_revocation_list(self, now: int) -> RevocationList:
        """Sign and record the next list (rule 3); inside the caller's transaction."""
        latest = self.store.latest_revocation_list()
        host_keys = tuple(
            RevokedHostKey(row["serial"], str(row["revocation_reason"]), int(row["revoked_at"]))
            for row in self.store.revoked_keys()
        )
        # A revoked host key's certificates are refused by its one entry.
        revoked_serials = {key.serial for key in host_keys}
        certificates = tuple(
            RevokedCertificate(
                row["cert_id"],
                revocation.SUPERSEDED
                if row["end_reason"] == tables.ENDED_SUPERSEDED
                else str(row["revocation_reason"] or "unspecified"),
                int(row["ended_at"]),
            )
            for row in self.store.listed_certifications(now)
            if row["serial"] not in revoked_serials
        )
        _, root = self._active_root_key()
        signed = revocation.sign_revocation_list(
            root,
            RevocationList(
                vendor_id=self.vendor_id,
                sequence=(latest[0] if latest else 0) + 1,
                issued_at=now,
                next_update=now + REVOCATION_LIST_LIFETIME,
                certificates=certificates,
                host_keys=host_keys,
            ),
        )
        self.store.add_revocation_list(signed.sequence, now, signed.next_update, signed.token)
        return signed

    def revocation_list(self) -> RevocationList:
        """The newest list, signed anew first if there is none or it is half-way to its
        ``next_update`` (so hosts that fetch it on schedule never hold a stale one)."""
        now = self.clock()
        with self.lock:
            latest = self.store.latest_revocation_list()
            if latest is not None and now < latest[2] - REVOCATION_LIST_LIFETIME // 2:
                return self._read_list(latest[3])
            with self.store.transaction():
                latest = self.store.latest_revocation_list()  # another process may have signed
                if latest is not None and now < latest[2] - REVOCATION_LIST_LIFETIME // 2:
                    return self._read_list(latest[3])
                return self._sign_revocation_list(now)

    def _read_list(self, token: str) -> RevocationList:
        keys = [record.public_key for record in self.store.root_keys()]
        return revocation.verify_revocation_list(
            token, [VerifyKey.from_paserk(key) for key in keys], vendor_id=self.vendor_id
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
            self.store.revoke_listed_certification(cert_id, now, reason)
            return self._sign_revocation_list(now)

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
            return self._sign_revocation_list(now), len(live)
