"""The host's Prometheus metrics (``prometheus_client``), served at the admin listener's
``/metrics``.

Recorded as they happen, cheaply (a counter and a histogram observation per request, at the
service layer, :meth:`HostMetrics.observe`; one observation per store batch, in the writer
thread):

``volact_requests_total{outcome}``
    Activation requests answered, by outcome: ``activated`` or the error code of the refusal
    (``count_insufficient``, ``client_blocked``, ``bad_request``, …). Requests the HTTP edge
    refuses before the service (rate limiting, malformed HTTP) are not among them.
``volact_request_duration_seconds``
    Time from the parsed body to the signed answer (or refusal), a histogram.
``volact_store_commit_seconds`` / ``volact_store_batch_size``
    Each store transaction's time from BEGIN to COMMIT, and how many writes it carried (the
    group commit of the SQLite and the PostgreSQL store, through their ``observe_commits``;
    the memory store reports none).

Read from the store when scraped (:meth:`HostMetrics.refresh`):

``volact_group_count{group}`` / ``volact_group_threshold{group}``
    Each product group's count of distinct clients and its activation threshold.
``volact_known_clients{group}``
    The clients (CMIDs) the host knows, counted or not.
``volact_certificate_not_after_seconds``
    The host certificate's end (Unix seconds; absent without a certificate).
``volact_dns_publish_success{domain}`` / ``volact_dns_publish_timestamp_seconds{domain}``
    The last DNS publishing result per domain (1 published, 0 failed) and when it was.

Every metric lives in the instance's own registry (no module-level state), so two hosts in one
process (tests) do not mix.
"""

from __future__ import annotations

from calendar import timegm
from time import strptime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from volact.host.admin import views
from volact.host.service import HostService

__all__ = ["CONTENT_TYPE_LATEST", "HostMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _unix(text: str | None) -> int | None:
    return None if text is None else timegm(strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class HostMetrics:
    """The metrics of one running host; :meth:`observe` is its request observer."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "volact_requests",
            "Activation requests answered, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "volact_request_duration_seconds",
            "Time to answer an activation request (parsed body to answer).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_latency = Histogram(
            "volact_store_commit_seconds",
            "Time of one store transaction, BEGIN to COMMIT.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "volact_store_batch_size",
            "Writes committed together in one store transaction.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.group_count = Gauge(
            "volact_group_count",
            "Distinct clients counted per product group.",
            ["group"],
            registry=registry,
        )
        self.group_threshold = Gauge(
            "volact_group_threshold",
            "The activation threshold of each product group.",
            ["group"],
            registry=registry,
        )
        self.known_clients = Gauge(
            "volact_known_clients",
            "Clients (CMIDs) the host knows, per group.",
            ["group"],
            registry=registry,
        )
        self.not_after = Gauge(
            "volact_certificate_not_after_seconds",
            "The end of the host certificate's validity (Unix seconds).",
            registry=registry,
        )
        self.dns_success = Gauge(
            "volact_dns_publish_success",
            "The last DNS publishing result per domain (1 published, 0 failed).",
            ["domain"],
            registry=registry,
        )
        self.dns_at = Gauge(
            "volact_dns_publish_timestamp_seconds",
            "When the last DNS publishing result per domain came (Unix seconds).",
            ["domain"],
            registry=registry,
        )
        # One child per outcome, made once: labels() looks the child up under a lock.
        self._outcomes: dict[str, Any] = {}
        self._observe_latency = self.latency.observe

    def observe(self, outcome: str, seconds: float) -> None:
        """Count one answered request (on the request path: a dict lookup and two updates)."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.requests.labels(outcome)
        child.inc()
        self._observe_latency(seconds)

    def observe_commit(self, seconds: float, writes: int) -> None:
        """One store transaction (called in the store's writer thread)."""
        self.commit_latency.observe(seconds)
        self.batch_size.observe(writes)

    async def refresh(self, service: HostService) -> None:
        """Set the gauges read from the store and the certificate (before a scrape)."""
        groups = await views.groups_json(service)
        self.group_count.clear()
        self.group_threshold.clear()
        for entry in groups:
            self.group_count.labels(entry["group"]).set(entry["count"])
            if entry["threshold"] is not None:
                self.group_threshold.labels(entry["group"]).set(entry["threshold"])
        self.known_clients.clear()
        for group, number in (await service.store.known()).items():
            self.known_clients.labels(group).set(number)
        certificate = service.certificate_status.certificate
        if certificate is not None:
            self.not_after.set(certificate.not_after)
        self.dns_success.clear()
        self.dns_at.clear()
        for result in await views.dns_json(service):
            self.dns_success.labels(result["domain"]).set(1 if result["ok"] else 0)
            at = _unix(result["at"])
            if at is not None:
                self.dns_at.labels(result["domain"]).set(at)

    async def exposition(self, service: HostService) -> bytes:
        """The text a scrape gets."""
        await self.refresh(service)
        return generate_latest(self.registry)
