"""What the admin API and the dashboard show, read from the running host's service and store.

Both render the same data: the API as JSON, the dashboard as HTML. Times are ISO 8601 UTC in
the JSON (as ``volact host status --json`` prints them); counts are the store's exact counts.

The store searches the clients (:meth:`~volact.store.base.Store.search_clients`) and filters
the events (:meth:`~volact.store.base.Store.events`: kind, CMID, start and end time), so one
CMID's events are found however old they are, within the event retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from volact import __version__
from volact.host.report import (
    client_json,
    dns_results,
    event_json,
    group_entries,
    iso,
    parse_cmid,
)
from volact.host.service import HostService
from volact.store.base import HOUR, ClientSearch, EventRecord

ClientQuery = ClientSearch  # the admin's search, as the store takes it

DNS_EVENTS_READ = 500
CLONE_EVENTS_READ = 5000

CHART_HOURS = 24
MAX_LIMIT = 1000


@dataclass(frozen=True)
class EventQuery:
    kind: str | None = None
    cmid: str | None = None
    since: int | None = None
    until: int | None = None
    limit: int = 100


# A CMID in its canonical form, or bad_request: the rule `volact host block` uses.
normalised_cmid = parse_cmid


def certificate_json(service: HostService) -> dict[str, Any]:
    now = service.clock()
    status = service.certificate_status
    certificate = status.certificate
    reason = status.explain(now)
    data: dict[str, Any] = {"activated": not reason, "reason": reason or None, "certificate": None}
    if certificate is not None:
        data["certificate"] = {
            "cert_id": certificate.cert_id,
            "vendor_id": certificate.vendor_id,
            "host_id": certificate.host_id,
            "customer": certificate.customer,
            "key_serial": certificate.key_serial,
            "groups": sorted(certificate.groups),
            "not_before": iso(certificate.not_before),
            "not_after": iso(certificate.not_after),
            "remaining_seconds": max(0, certificate.not_after - now),
        }
    return data


async def groups_json(service: HostService) -> list[dict[str, Any]]:
    now = service.clock()
    certificate = service.certificate_status.certificate
    counts = await service.store.counts(now)
    return group_entries(service.settings, counts, certificate.groups if certificate else {})


async def status_json(service: HostService) -> dict[str, Any]:
    now = service.clock()
    stats = await service.store.stats()
    return {
        "host_id": service.settings.host_id,
        "version": __version__,
        "time": iso(now),
        "store": service.store.url,
        **certificate_json(service),
        "groups": await groups_json(service),
        "statistics": stats.to_json(),
    }


async def fingerprint_changes(service: HostService) -> dict[str, int]:
    """How many times each CMID came back with another fingerprint (``cloned_image`` events,
    of the newest :data:`CLONE_EVENTS_READ`)."""
    changes: dict[str, int] = {}
    for event in await service.store.events(limit=CLONE_EVENTS_READ, kind="cloned_image"):
        if event.cmid:
            changes[event.cmid] = changes.get(event.cmid, 0) + 1
    return changes


async def clients_json(service: HostService, query: ClientSearch) -> dict[str, Any]:
    """One page of the clients matching ``query``, with the total that match (the store
    searches: :meth:`~volact.store.base.Store.search_clients`)."""
    total, page = await service.store.search_clients(query)
    changes = await fingerprint_changes(service) if page else {}
    return {
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
        "clients": [
            {**client_json(r), "fingerprint_changes": changes.get(r.cmid, 0)} for r in page
        ],
    }


async def events_list(service: HostService, query: EventQuery) -> list[EventRecord]:
    """The newest events matching ``query`` (at most ``limit``), newest first: the store
    filters them all."""
    return await service.store.events(
        limit=query.limit,
        since=query.since,
        until=query.until,
        kind=query.kind,
        cmid=query.cmid,
    )


async def events_json(service: HostService, query: EventQuery) -> dict[str, Any]:
    found = await events_list(service, query)
    return {"limit": query.limit, "events": [event_json(event) for event in found]}


async def dns_json(service: HostService) -> list[dict[str, Any]]:
    events = [
        *await service.store.events(limit=DNS_EVENTS_READ, kind="dns_published"),
        *await service.store.events(limit=DNS_EVENTS_READ, kind="dns_publish_failed"),
    ]
    return dns_results(events)


async def set_blocked(service: HostService, cmid: str, blocked: bool) -> dict[str, Any]:
    """Block or unblock a CMID in every group (NotFound when unknown)."""
    normalised = normalised_cmid(cmid)
    now = service.clock()
    store = service.store
    changed = await (store.block(normalised, now) if blocked else store.unblock(normalised, now))
    return {"cmid": normalised, "blocked": blocked, "groups": changed}


async def requests_per_hour(service: HostService, hours: int = CHART_HOURS) -> list[dict[str, Any]]:
    """Activation requests in each of the last ``hours`` hours (oldest first), by whether they
    were answered with a ticket (the store counts them: :meth:`Store.requests_per_hour`)."""
    now = service.clock()
    first = now // HOUR - hours + 1
    counted = await service.store.requests_per_hour(first * HOUR)
    buckets = []
    for hour in range(first, first + hours):
        activated, total = counted.get(hour, (0, 0))
        buckets.append(
            {"start": iso(hour * HOUR), "activated": activated, "other": total - activated}
        )
    return buckets
