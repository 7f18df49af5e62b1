"""The host's SRV publishing loop (SPEC §5).

Rules:

1. At start, and then every ``interval`` (24 hours), the host publishes its own SRV record into
   each domain by RFC 2136 update (``volact.net.dns.publish_srv``).
2. A domain whose publishing failed is tried again after ``retry_interval`` (1 hour), not after a
   whole day: a DNS server that was down when the host started should not hide the host for 24
   hours.
3. Every attempt becomes an event: ``dns_published`` or ``dns_publish_failed`` (details: domain,
   error, reason). A failure is logged and never stops the host: ``run()`` does not raise.
4. Publishing blocks on the network, so it runs in a worker thread; the event loop (which
   answers clients) is never blocked by a slow DNS server.
5. When ``withdraw_on_stop`` is set, the host removes its own record when it stops (best
   effort, one try, failures only logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from volact.core.descriptor import DEFAULT_SRV_SERVICE
from volact.core.host_machine import Event
from volact.net import dns

DAY = 24 * 3600
HOUR = 3600

logger = logging.getLogger("volact.host.publisher")


class Publish(Protocol):
    """``volact.net.dns.publish_srv``'s signature (a fake may stand in for it)."""

    def __call__(
        self,
        domain: str,
        *,
        service: str,
        target: str,
        port: int,
        priority: int,
        weight: int,
        ttl: int,
        server: dns.DNSServer,
        key: dns.TSIGKey,
        timeout: float,
    ) -> None: ...


class Withdraw(Protocol):
    """``volact.net.dns.withdraw_srv``'s signature."""

    def __call__(
        self,
        domain: str,
        *,
        service: str,
        target: str,
        port: int,
        server: dns.DNSServer,
        key: dns.TSIGKey,
        timeout: float,
    ) -> None: ...


@dataclass(frozen=True)
class PublishResult:
    """The last publishing attempt for one domain (for ``volact host status``)."""

    domain: str
    ok: bool
    at: int
    error: str = ""
    reason: str = ""


class SRVPublisher:
    """Publishes ``<service>.<domain> SRV priority weight port target`` into each domain."""

    def __init__(
        self,
        domains: Sequence[str],
        *,
        service: str = DEFAULT_SRV_SERVICE,
        target: str,
        port: int,
        priority: int = 0,
        weight: int = 0,
        ttl: int = dns.DEFAULT_TTL,
        server: dns.DNSServer,
        key: dns.TSIGKey,
        on_event: Callable[[Event], None],
        clock: Callable[[], int],
        publish: Publish = dns.publish_srv,
        withdraw: Withdraw = dns.withdraw_srv,
        interval: float = DAY,
        retry_interval: float = HOUR,
        timeout: float = 5.0,
        withdraw_on_stop: bool = False,
    ) -> None:
        self.domains = [dns.normalize_name(domain) for domain in domains]
        self.service = service
        self.target = dns.normalize_name(target, what="target")
        self.port = port
        self.priority = priority
        self.weight = weight
        self.ttl = ttl
        self.server = server
        self.key = key
        self.on_event = on_event
        self.clock = clock
        self.publish = publish
        self.withdraw = withdraw
        self.interval = interval
        self.retry_interval = retry_interval
        self.timeout = timeout
        self.withdraw_on_stop = withdraw_on_stop
        self.last_result: dict[str, PublishResult] = {}

    def records(self) -> list[str]:
        """The zone-file lines this publisher maintains (what ``dns-records`` prints)."""
        return dns.zone_lines(
            self.domains,
            self.service,
            target=self.target,
            port=self.port,
            priority=self.priority,
            weight=self.weight,
            ttl=self.ttl,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish now, then again when due, until ``stop`` is set. Never raises."""
        loop = asyncio.get_running_loop()
        due = {domain: loop.time() for domain in self.domains}
        if not due:
            await stop.wait()
            return
        try:
            while not stop.is_set():
                for domain in self.domains:
                    if stop.is_set():
                        break
                    if due[domain] <= loop.time():
                        ok = await self.publish_once(domain)
                        wait = self.interval if ok else self.retry_interval
                        due[domain] = loop.time() + wait
                delay = max(0.0, min(due.values()) - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            if self.withdraw_on_stop:
                for domain in self.domains:
                    await self.withdraw_once(domain)
        except Exception:  # A bug here must not take the host down with it.
            logger.exception("DNS publishing stopped after an unexpected error")

    async def publish_once(self, domain: str) -> bool:
        """Publish into one domain (in a worker thread); record the result and the event."""
        try:
            await self._update(
                self.publish, domain, priority=self.priority, weight=self.weight, ttl=self.ttl
            )
        except Exception as error:  # DNSPublishError, or anything a bad DNS answer provokes.
            reason = error.reason if isinstance(error, dns.DNSPublishError) else "error"
            message = str(error) or type(error).__name__
            logger.warning("publishing the SRV record in %s failed: %s", domain, message)
            self._record(PublishResult(domain, False, self.clock(), message, reason))
            return False
        logger.info("published SRV %s.%s -> %s:%d", self.service, domain, self.target, self.port)
        self._record(PublishResult(domain, True, self.clock()))
        return True

    async def withdraw_once(self, domain: str) -> None:
        """Remove this host's record from one domain; failures are only logged."""
        try:
            await self._update(self.withdraw, domain)
        except Exception as error:
            logger.warning("withdrawing the SRV record from %s failed: %s", domain, error)
        else:
            logger.info("withdrew SRV %s.%s -> %s:%d", self.service, domain, self.target, self.port)

    async def _update(self, action: Callable[..., None], domain: str, **record: int) -> None:
        """Run ``action`` (publish or withdraw) for this host's record in ``domain`` in a
        worker thread, with the record's name, target and port and the server to update."""
        await asyncio.to_thread(
            action,
            domain,
            service=self.service,
            target=self.target,
            port=self.port,
            server=self.server,
            key=self.key,
            timeout=self.timeout,
            **record,
        )

    def _record(self, result: PublishResult) -> None:
        self.last_result[result.domain] = result
        details: dict[str, object] = {
            "domain": result.domain,
            "name": f"{self.service}.{result.domain}",
            "target": self.target,
            "port": self.port,
            "server": str(self.server),
        }
        if result.ok:
            event = Event("dns_published", result.at, details=details)
        else:
            details.update(error=result.error, reason=result.reason)
            event = Event("dns_publish_failed", result.at, details=details)
        try:
            self.on_event(event)
        except Exception:  # The event log failing must not stop publishing either.
            logger.exception("could not record the DNS publishing event")
