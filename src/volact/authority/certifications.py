"""The vendor store's tables of the host trust lifecycle, mixed into
:class:`~volact.authority.store.VendorStore`: host certifications (and how each ended), revoked
host keys, and the revocation lists signed so far (one sequence per host key).

A certification row is *live* while it has not ended (``ended_at`` NULL) and its certificate
has not expired. It ends ``superseded`` (the same host id certified again), ``renewed`` (the
same host key given a new certificate) or ``revoked`` (the vendor's decision, with a reason).
Superseded and revoked certificates are what a revocation list names until they expire.
Time is always passed in (``now``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

KIND_CERTIFICATION = "certification"
KIND_RENEWAL = "renewal"
ENDED_SUPERSEDED = "superseded"
ENDED_RENEWED = "renewed"
ENDED_REVOKED = "revoked"
LISTED_ENDINGS = (ENDED_SUPERSEDED, ENDED_REVOKED)

_CERTIFICATION_COLUMNS = (
    "host_id, machine, cert_id, via, address, issued_at, not_after, request_id, kind, ended_at, "
    "end_reason, revocation_reason, replaced_by, serial, host_key"
)


class CertificationTables:
    """Queries of ``host_certifications``, ``keys.revoked_at`` and ``revocation_lists``."""

    if TYPE_CHECKING:

        def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...
        def _write(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...
        def _number(self, sql: str, params: tuple[Any, ...] = ()) -> int: ...
        def _dicts(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]: ...
        def _use_key(self, serial: str) -> None: ...

    # --- certifications ------------------------------------------------------------------

    def request_seen(self, request_id: str) -> bool:
        row = self._execute(
            "SELECT 1 FROM host_certifications WHERE request_id = ?", (request_id,)
        ).fetchone()
        return row is not None

    def certifications_of_host(self, serial: str, host_id: str) -> int:
        """How many times ``host_id`` was certified with a new host key (renewals not counted)."""
        return self._number(
            "SELECT COUNT(*) FROM host_certifications WHERE serial = ? AND host_id = ? "
            "AND kind = ?",
            (serial, host_id, KIND_CERTIFICATION),
        )

    def live_certifications(self, serial: str, now: int) -> list[dict[str, Any]]:
        """The certificates of host key ``serial`` that have neither ended nor expired."""
        return self._dicts(
            f"SELECT {_CERTIFICATION_COLUMNS} FROM host_certifications WHERE serial = ? "
            "AND ended_at IS NULL AND not_after > ? ORDER BY id",
            (serial, now),
        )

    def certification(self, cert_id: str) -> dict[str, Any] | None:
        rows = self._dicts(
            f"SELECT {_CERTIFICATION_COLUMNS} FROM host_certifications WHERE cert_id = ?",
            (cert_id,),
        )
        return rows[0] if rows else None

    def record_certification(
        self,
        *,
        serial: str,
        request_id: str,
        host_id: str,
        host_key: str,
        machine: str,
        cert_id: str,
        root_key_id: str,
        via: str,
        address: str | None,
        issued_at: int,
        not_after: int,
        new_host: bool,
        kind: str = KIND_CERTIFICATION,
    ) -> None:
        self._write(
            "INSERT INTO host_certifications (serial, request_id, host_id, host_key, machine, "
            "cert_id, root_key_id, via, address, issued_at, not_after, kind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                serial,
                request_id,
                host_id,
                host_key,
                machine,
                cert_id,
                root_key_id,
                via,
                address,
                issued_at,
                not_after,
                kind,
            ),
        )
        if new_host:
            self._use_key(serial)

    def end_certification(
        self,
        cert_id: str,
        now: int,
        ending: str,
        *,
        revocation_reason: str | None = None,
        replaced_by: str | None = None,
    ) -> None:
        """Record why a live certificate ended (a certificate ends once: the first reason)."""
        self._write(
            "UPDATE host_certifications SET ended_at = ?, end_reason = ?, "
            "revocation_reason = ?, replaced_by = ? WHERE cert_id = ? AND ended_at IS NULL",
            (now, ending, revocation_reason, replaced_by, cert_id),
        )

    def revoke_listed_certification(self, cert_id: str, now: int, reason: str) -> None:
        """Revoke a certificate whatever its ending so far (a superseded one becomes revoked:
        the stronger word, with the vendor's reason)."""
        self._write(
            "UPDATE host_certifications SET ended_at = COALESCE(ended_at, ?), end_reason = ?, "
            "revocation_reason = ? WHERE cert_id = ?",
            (now, ENDED_REVOKED, reason, cert_id),
        )

    def lineage(self, cert_id: str, now: int) -> list[str]:
        """``cert_id`` and the unexpired certificates of the same host id and host signing key
        that are live or ended ``renewed``: one host's certificates, which a renewal leaves
        valid side by side. Revoking or superseding the host lists them all."""
        rows = self._execute(
            "SELECT other.cert_id FROM host_certifications AS other "
            "JOIN host_certifications AS named ON named.serial = other.serial "
            "AND named.host_id = other.host_id AND named.host_key = other.host_key "
            "WHERE named.cert_id = ? AND other.cert_id <> ? AND other.not_after > ? "
            "AND (other.ended_at IS NULL OR other.end_reason = ?) ORDER BY other.id",
            (cert_id, cert_id, now, ENDED_RENEWED),
        ).fetchall()
        return [cert_id, *(str(row[0]) for row in rows)]

    def renewed_in_lineage(self, cert_id: str, now: int) -> bool:
        """Whether a certificate of ``cert_id``'s host id and signing key that ended
        ``renewed`` has not expired yet (the lineage of :meth:`lineage`)."""
        row = self._execute(
            "SELECT 1 FROM host_certifications AS other "
            "JOIN host_certifications AS named ON named.serial = other.serial "
            "AND named.host_id = other.host_id AND named.host_key = other.host_key "
            "WHERE named.cert_id = ? AND other.end_reason = ? AND other.not_after > ?",
            (cert_id, ENDED_RENEWED, now),
        ).fetchone()
        return row is not None

    def supersede_renewed(self, serial: str, host_id: str, replaced_by: str, now: int) -> int:
        """List the unexpired certificates of ``host_id`` that ended ``renewed`` as superseded
        by ``replaced_by`` (a renewal leaves its predecessor valid); how many."""
        cursor = self._write(
            "UPDATE host_certifications SET end_reason = ?, replaced_by = ? WHERE serial = ? "
            "AND host_id = ? AND end_reason = ? AND not_after > ? AND cert_id <> ?",
            (ENDED_SUPERSEDED, replaced_by, serial, host_id, ENDED_RENEWED, now, replaced_by),
        )
        return int(cursor.rowcount or 0)

    def certifications(self, serial: str) -> list[dict[str, Any]]:
        return self._dicts(
            f"SELECT {_CERTIFICATION_COLUMNS} FROM host_certifications WHERE serial = ? "
            "ORDER BY id",
            (serial,),
        )

    def certification_count(self) -> int:
        return self._number("SELECT COUNT(*) FROM host_certifications")

    def listed_certifications(self, serial: str, now: int) -> list[dict[str, Any]]:
        """Superseded or revoked certificates of host key ``serial`` that have not expired: what
        its list names."""
        return self._dicts(
            "SELECT cert_id, serial, end_reason, revocation_reason, ended_at "
            "FROM host_certifications WHERE serial = ? AND end_reason IN (?, ?) AND not_after > ? "
            "ORDER BY ended_at, id",
            (serial, *LISTED_ENDINGS, now),
        )

    # --- host keys -----------------------------------------------------------------------

    def revoke_key(self, serial: str, now: int, reason: str) -> None:
        self._write(
            "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?), revocation_reason = ? "
            "WHERE serial = ?",
            (now, reason, serial),
        )

    def key_revocation(self, serial: str) -> tuple[int, str] | None:
        """When and why host key ``serial`` was revoked (None: it was not)."""
        row = self._execute(
            "SELECT revoked_at, revocation_reason FROM keys WHERE serial = ? "
            "AND revoked_at IS NOT NULL",
            (serial,),
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def revoked_keys(self, serial: str, now: int) -> list[dict[str, Any]]:
        """The revoked host keys that the list of host key ``serial`` names: ``serial`` itself
        and the other host keys of its customer, each while it has a certificate that has not
        expired yet (a revoked key certifies nothing more, so once its certificates expired
        there is nothing left to refuse)."""
        return self._dicts(
            "SELECT serial, revocation_reason, revoked_at FROM keys WHERE revoked_at IS NOT NULL "
            "AND channel = 'host' AND (serial = ? OR serial IN (SELECT serial FROM keys "
            "WHERE channel = 'host' AND customer <> '' AND customer = (SELECT customer FROM keys "
            "WHERE serial = ?))) AND EXISTS (SELECT 1 FROM host_certifications AS c "
            "WHERE c.serial = keys.serial AND c.not_after > ?) ORDER BY revoked_at, serial",
            (serial, serial, now),
        )

    def customer_host_keys(self, serial: str) -> list[str]:
        """The serials of the other host keys of the customer of host key ``serial``."""
        rows = self._execute(
            "SELECT serial FROM keys WHERE channel = 'host' AND serial <> ? AND customer <> '' "
            "AND customer = (SELECT customer FROM keys WHERE serial = ?) ORDER BY serial",
            (serial, serial),
        ).fetchall()
        return [str(row[0]) for row in rows]

    # --- revocation lists ----------------------------------------------------------------

    def latest_revocation_list(self, serial: str) -> tuple[int, int, int, str] | None:
        """The newest list signed for host key ``serial``: (sequence, issued_at, next_update,
        token)."""
        row = self._execute(
            "SELECT sequence, issued_at, next_update, token FROM revocation_lists "
            "WHERE serial = ? ORDER BY sequence DESC LIMIT 1",
            (serial,),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]), str(row[3]))

    def add_revocation_list(
        self, serial: str, sequence: int, issued_at: int, next_update: int, token: str
    ) -> None:
        self._write(
            "INSERT INTO revocation_lists (serial, sequence, issued_at, next_update, token) "
            "VALUES (?, ?, ?, ?, ?)",
            (serial, sequence, issued_at, next_update, token),
        )

    # --- settings ------------------------------------------------------------------------

    def setting(self, name: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def put_setting(self, name: str, value: str) -> None:
        self._write(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
