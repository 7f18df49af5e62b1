"""What a running host does with its vendor besides answering clients (issue 20): take up the
newest revocation list, fetch it from the vendor service, and renew the certificate when due.

:class:`VendorUpkeep` is part of :class:`~volact.host.service.HostService` (a mixin, so that the
service module stays about answering requests). The revocation list's rules are
:mod:`volact.core.revocation` and :mod:`volact.host.revocations`; renewal's are
:mod:`volact.core.host_renewal` and :mod:`volact.host.certificate_renewal`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from volact.core import host_renewal
from volact.core.errors import VolactError
from volact.core.host_machine import Event
from volact.core.revocation import RevocationList
from volact.host import certificate_renewal
from volact.host import revocations as host_revocations

if TYPE_CHECKING:
    from collections.abc import Callable

    from volact.host.identity import HostFiles, HostSettings

log = logging.getLogger("volact.host")


class VendorUpkeep:
    """The revocation list a host sends, and its upkeep with the vendor service."""

    revocations: RevocationList | None
    _revocations_json: bytes
    vendor_upkeep_interval: float = host_revocations.FETCH_INTERVAL

    if TYPE_CHECKING:
        _files: HostFiles | None
        settings: HostSettings
        certificate_status: Any
        clock: Callable[[], int]

        def _apply_certificate(
            self, settings: HostSettings, certificate_token: str | None
        ) -> None: ...
        async def _record_event(self, event: Event) -> None: ...
        async def check_for_new_certificate(self) -> bool: ...

    def _apply_revocations(self, revocations: RevocationList | None) -> None:
        """Make ``revocations`` the list every answer carries."""
        self.revocations = revocations
        # A PASETO token is ASCII letters, digits and "-_." only: it needs no JSON escaping.
        self._revocations_json = (
            b'"revocations":"%s",' % revocations.token.encode("ascii")
            if revocations is not None
            else b""
        )

    async def check_for_new_revocations(self) -> bool:
        """Take up a newer list installed in the host directory (offline, or fetched by another
        process); a list naming this host's own certificate stops it activating."""
        if self._files is None:
            return False
        files = self._files
        found = await asyncio.to_thread(host_revocations.load, files, self.settings)
        held = self.revocations
        # The highest sequence wins per host key; a list of another key than the one held
        # (the host was certified again with a new host key) replaces it whatever its sequence.
        if found is None or (
            held is not None and found.host_key == held.host_key and found.sequence <= held.sequence
        ):
            return False
        self._apply_revocations(found)
        self._apply_certificate(self.settings, self.certificate_status.token or None)
        details: dict[str, Any] = {"sequence": found.sequence, "host_key": found.host_key}
        reason = self.certificate_status.explain(self.clock())
        if reason:
            details["reason"] = reason
        log.info("revocation list %d taken up", found.sequence, extra=details)
        await self._record_event(Event("revocations_loaded", self.clock(), details=details))
        return True

    async def fetch_revocations(self) -> bool:
        """Fetch the newest list from the vendor service (host.json's vendor_url) now."""
        if self._files is None or not self.settings.vendor_url:
            return False
        files = self._files
        await asyncio.to_thread(host_revocations.fetch_online, files)
        return await self.check_for_new_revocations()

    async def renew_certificate_if_due(self) -> bool:
        """Renew the certificate at the vendor service once two thirds of its life have passed
        (volact.core.host_renewal rule 3) and take the new one up; True if renewed."""
        certificate = self.certificate_status.certificate
        now = self.clock()
        if (
            self._files is None
            or not self.settings.vendor_url
            or certificate is None
            or not host_renewal.renewal_due(certificate, now)
        ):
            return False
        files = self._files
        await asyncio.to_thread(certificate_renewal.renew_online, files, now=now)
        return await self.check_for_new_certificate()

    async def _vendor_upkeep(self) -> None:
        """With a vendor URL: fetch the revocation list and renew the certificate when due."""
        while True:
            for step, what in (
                (self.fetch_revocations, "fetch the vendor's revocation list"),
                (self.renew_certificate_if_due, "renew the host certificate"),
            ):
                try:
                    await step()
                except VolactError as exc:
                    log.warning("could not %s: %s", what, exc.message)
                except Exception:
                    log.exception("could not %s", what)
            await asyncio.sleep(self.vendor_upkeep_interval)
