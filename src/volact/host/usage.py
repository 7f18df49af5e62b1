"""The host's usage log and its signed reports (issue 20; the rules are :mod:`volact.core.usage`,
the database part :mod:`volact.store.usage_log`).

A running host (``volact host serve`` on SQLite or PostgreSQL) records the count-relevant
events of its database every :data:`RECORD_INTERVAL` and signs the chain's head with its
certified key (:func:`usage_job`); several hosts sharing one database append one chain.
:func:`export_report` records once more, then writes the report of a period
(``volact host usage-report --from … --to … -o FILE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from volact.core import usage
from volact.core.errors import HostNotActivated, VolactError
from volact.core.tickets import verify_certificate
from volact.crypto import VerifyKey
from volact.host.identity import HostFiles
from volact.store.usage_log import UsageLog

if TYPE_CHECKING:
    from volact.host.service import HostService

log = logging.getLogger("volact.host")
RECORD_INTERVAL = 900.0


def record_usage(files: HostFiles, url: str, *, now: int) -> int:
    """Append the events since the last scan and sign the head; returns how many."""
    settings = files.settings()
    key = files.signing_key()
    token = files.certificate_token()
    certificate = verify_certificate(
        token,
        [VerifyKey.from_paserk(text) for text in settings.vendor_root_keys],
        vendor_id=settings.vendor_id,
    )
    with UsageLog(url) as usage_log:
        return usage_log.record(
            now=now,
            host_id=settings.host_id,
            cert_id=certificate.cert_id,
            certificate=token,
            sign=lambda head: usage.sign_head(key, head),
        )


def export_report(files: HostFiles, url: str, *, start: int, end: int, now: int) -> usage.Report:
    """The report of the events signed from ``start`` to ``end`` (recorded up to now first)."""
    record_usage(files, url, now=now)
    settings = files.settings()
    if not settings.vendor_id:
        raise HostNotActivated("this host was never certified; it has no usage to report")
    with UsageLog(url) as usage_log:
        run = usage_log.report_range(start, end)
    return usage.build_report(
        vendor_id=settings.vendor_id,
        start=start,
        end=end,
        prev_hash=run.prev_hash,
        events=run.events,
        hashes=run.hashes,
        heads=run.heads,
        certificates=run.certificates,
    )


def usage_job(
    files: HostFiles, url: str, interval: float = RECORD_INTERVAL
) -> Callable[[HostService, asyncio.Event], Awaitable[None]]:
    """The background job of ``volact host serve`` that records usage every ``interval``."""

    async def record_usage_log(service: HostService, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.to_thread(record_usage, files, url, now=service.clock())
            except VolactError as exc:
                log.warning("could not record the usage log: %s", exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)

    return record_usage_log
