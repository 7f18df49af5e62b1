"""The host admin's view: the status report, the clients, the event log, blocking a CMID.

What ``volact host status``, ``clients``, ``events``, ``block`` and ``unblock`` show and do,
as JSON-ready data (the CLI renders it as text or prints it with ``--json``). Each reads and
writes the store directly, so it works while ``volact host serve`` runs (SQLite in WAL mode
lets it). Times are ISO 8601 UTC.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from volact.core.errors import BadRequest, ConfigurationError, HostNotActivated, NotFound
from volact.core.policy import GroupPolicy
from volact.host import revocations as host_revocations
from volact.host.identity import HostFiles, HostSettings
from volact.host.service import check_certificate, unless_revoked
from volact.sql.urls import sqlite_url_path
from volact.store import open_store, redact_url
from volact.store.base import EventRecord, KnownClient, Store

T = TypeVar("T")

# The status report reads this many of the newest events of each DNS kind to find the last
# result per domain (a failing domain is retried hourly; every domain succeeds at most daily).
DNS_EVENTS_READ = 500
RECENT_EVENTS = 5


def iso(timestamp: int | None) -> str | None:
    """Unix seconds as ISO 8601 UTC (``2026-01-31T12:00:00Z``); None stays None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def client_json(record: KnownClient) -> dict[str, Any]:
    return {
        "cmid": record.cmid,
        "group": record.group,
        "product": record.product,
        "machine": record.machine,
        "fingerprint": record.fingerprint,
        "state": record.state,
        "blocked": record.blocked,
        "first_seen": iso(record.first_seen),
        "last_seen": iso(record.last_seen),
        "valid_until": iso(record.valid_until),
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "kind": event.kind,
        "cmid": event.cmid,
        "group": event.group,
        "machine": event.details.get("machine"),
        "details": event.details,
    }


def dns_results(events: list[EventRecord]) -> list[dict[str, Any]]:
    """The latest DNS publishing result per domain, from the event log (``serve`` publishes in
    another process, so the events are the only record of it)."""
    latest: dict[str, EventRecord] = {}
    for event in sorted(events, key=lambda e: e.id):
        domain = event.details.get("domain")
        if isinstance(domain, str):
            latest[domain] = event
    return [
        {
            "domain": domain,
            "ok": event.kind == "dns_published",
            "at": iso(event.at),
            "reason": event.details.get("reason"),
            "error": event.details.get("error"),
            "name": event.details.get("name"),
            "target": event.details.get("target"),
            "port": event.details.get("port"),
            "server": event.details.get("server"),
        }
        for domain, event in sorted(latest.items())
    ]


DNS_CHECK_TIMEOUT = 2.0
"""How long ``volact host status`` waits for the DNS server when it checks a published record."""


def check_published(
    entries: list[dict[str, Any]], *, timeout: float = DNS_CHECK_TIMEOUT
) -> list[dict[str, Any]]:
    """The DNS publishing results of :func:`dns_results`, each published one checked against
    the DNS server it was published to: ``in_dns`` is True when that server answers the record
    (this host's target and port) now, False when it answers without it (the record was deleted
    from the zone since), None when it could not be asked; ``dns_now`` is the query's outcome
    (``answer``, ``nxdomain``, ``noanswer``, ``timeout`` or ``error: …``)."""
    from volact.core.errors import VolactError
    from volact.net import dns

    checked = []
    for entry in entries:
        entry = dict(entry)
        if entry["ok"] and entry["name"] and entry["server"] and entry["target"]:
            try:
                server = dns.DNSServer.parse(str(entry["server"]))
            except VolactError:
                checked.append(entry)
                continue
            result = dns.query_srv(str(entry["name"]), server=server, timeout=timeout)
            target = str(entry["target"]).rstrip(".").lower()
            found = any(r.target == target and r.port == entry["port"] for r in result.records)
            answered = result.outcome in ("answer", "nxdomain", "noanswer")
            entry["in_dns"] = found if answered else None
            entry["dns_now"] = result.outcome
        checked.append(entry)
    return checked


def shown_url(url: str) -> str:
    """The database URL fit to print. SQLite and memory URLs hold no password and are shown as
    given: ``redact_url`` rebuilds URLs with ``urlunsplit``, which drops the empty host of
    ``sqlite:////abs/path`` (it printed ``sqlite://abs/path``)."""
    if url.startswith(("sqlite:", "memory:")):
        return url
    return redact_url(url)


def store_url(directory: Path, database_url: str | None) -> str:
    """``database_url``, else the host directory's database (a clear "no host in DIR; run
    `volact host init`" when there is no host)."""
    if database_url:
        return database_url
    files = HostFiles(directory)
    files.settings()
    return files.database_url


@asynccontextmanager
async def _opened(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def readable_url(url: str) -> str:
    """The URL an admin command opens for ``url``: a SQLite database that does not exist yet
    reads as an empty store (``memory://``), so reading never creates one. (``volact host
    status`` run as root before the first ``serve`` made a root-owned host.db, and the service
    user could then not start.)"""
    path = sqlite_url_path(url)
    if path and path != ":memory:" and not Path(path).exists():
        return "memory://"
    return url


def with_store(url: str, work: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
    """Run ``await work(store)`` on the opened store of ``url``. No admin command creates the
    database (:func:`readable_url`): reading one that does not exist yet reads an empty store,
    and block and unblock find no client in it."""
    url = readable_url(url)

    async def main() -> T:
        async with _opened(url) as store:
            return await work(store)

    return asyncio.run(main())


def parse_cmid(text: str) -> str:
    """A CMID as given on the command line, normalised (a UUID)."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError as exc:
        raise ConfigurationError(f"{text!r} is not a CMID (a UUID)", {"cmid": text}) from exc


def shown_intervals(
    policy: GroupPolicy, renewal_interval: int | None, retry_interval: int | None
) -> tuple[int, int]:
    """The renewal and retry intervals the report shows for a group: the host admin's choice in
    host.json within the vendor's bounds (:meth:`GroupPolicy.with_admin_intervals`, the one
    rule the host itself applies).

    A choice outside the vendor's bounds (0 included), with which the host refuses to start, is
    shown as written.
    """
    renewal, retry = renewal_interval, retry_interval
    with suppress(BadRequest):  # outside the vendor's bounds: shown as written
        renewal = policy.with_admin_intervals(renewal_interval=renewal).renewal_interval
    with suppress(BadRequest):
        retry = policy.with_admin_intervals(retry_interval=retry).retry_interval
    # Never None: with no choice, the vendor's own interval is within its bounds.
    assert renewal is not None and retry is not None
    return renewal, retry


def group_entries(
    settings: HostSettings, counts: dict[str, int], groups: dict[str, GroupPolicy]
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for name in sorted(set(counts) | set(groups)):
        policy = groups.get(name)
        entry: dict[str, Any] = {"group": name, "count": counts.get(name, 0)}
        if policy is not None:
            renewal, retry = shown_intervals(
                policy, settings.renewal_interval, settings.retry_interval
            )
            entry.update(
                threshold=policy.threshold,
                activating=counts.get(name, 0) >= policy.threshold,
                validity=policy.validity,
                renewal_interval=renewal,
                retry_interval=retry,
            )
        else:
            entry.update(threshold=None, activating=False)  # counted once, no longer certified
        entries.append(entry)
    return entries


def status_report(directory: Path, database_url: str | None, now: int) -> dict[str, Any]:
    """The host's id, certificate, counts per group, statistics, DNS publishing results and
    newest events (like slmgr /dlv), as ``volact host status --json`` prints it."""
    files = HostFiles(directory)
    settings = files.settings()
    try:
        token: str | None = files.certificate_token()
    except HostNotActivated:
        token = None
    revocation_list = host_revocations.load(files, settings)
    certificate_status = unless_revoked(
        check_certificate(settings, files.signing_key().public_key, token), revocation_list
    )
    certificate = certificate_status.certificate
    url = database_url or files.database_url

    async def read(store: Store) -> tuple[Any, ...]:
        dns_events = [
            *await store.events(limit=DNS_EVENTS_READ, kind="dns_published"),
            *await store.events(limit=DNS_EVENTS_READ, kind="dns_publish_failed"),
        ]
        return (
            await store.counts(now),
            await store.stats(),
            await store.events(limit=RECENT_EVENTS),
            dns_events,
        )

    counts, stats, recent, dns_events = with_store(url, read)
    reason = certificate_status.explain(now)
    data: dict[str, Any] = {
        "host_id": settings.host_id,
        "directory": str(directory),
        "database": shown_url(url),
        "port": settings.port,
        "activated": not reason,
        "reason": reason or None,
        "certificate": None,
        "groups": group_entries(settings, counts, certificate.groups if certificate else {}),
        "statistics": stats.to_json(),
        "dns_publishing": dns_results(dns_events),
        "recent_events": [event_json(event) for event in recent],
        "revocations": None
        if revocation_list is None
        else {
            "host_key": revocation_list.host_key,
            "sequence": revocation_list.sequence,
            "issued_at": iso(revocation_list.issued_at),
            "next_update": iso(revocation_list.next_update),
            "stale": revocation_list.stale_at(now),
            "certificates": len(revocation_list.certificates),
            "host_keys": len(revocation_list.host_keys),
        },
    }
    if certificate is not None:
        data["certificate"] = {
            "cert_id": certificate.cert_id,
            "customer": certificate.customer,
            "key_serial": certificate.key_serial,
            "groups": sorted(certificate.groups),
            "not_before": iso(certificate.not_before),
            "not_after": iso(certificate.not_after),
        }
    return data


def clients(
    url: str, group: str | None, *, limit: int, offset: int
) -> tuple[list[KnownClient], int]:
    """A page of the clients (CMIDs) the store of ``url`` knows, by group and first request,
    and how many there are in all (so the caller can say that the list was cut)."""

    async def read(store: Store) -> tuple[list[KnownClient], int]:
        page = await store.clients(group, limit=limit, offset=offset)
        return page, await store.client_total(group)

    return with_store(url, read)


def events(
    url: str,
    *,
    limit: int,
    kind: str | None,
    cmid: str | None = None,
    since: int | None = None,
    until: int | None = None,
) -> list[EventRecord]:
    """The newest ``limit`` events (of ``kind``, about ``cmid``, from ``since`` to ``until``
    inclusive), newest first."""
    return with_store(
        url,
        lambda store: store.events(limit=limit, kind=kind, cmid=cmid, since=since, until=until),
    )


_CMID_PREFIX = re.compile(r"[0-9a-f-]{1,36}")
# How many matches an ambiguous prefix lists.
SHOWN_MATCHES = 10


async def resolve_cmid(store: Store, text: str) -> str:
    """The one known CMID that ``text`` names: a whole CMID (any case), or a prefix of one, such
    as the 8 characters ``volact host clients`` shows. A prefix that matches none gives
    ``not_found``; one that matches several gives ``bad_request`` listing them."""
    given = text.strip().lower()
    with suppress(ValueError):
        return str(uuid.UUID(given))
    if not _CMID_PREFIX.fullmatch(given):
        raise ConfigurationError(
            f"{text!r} is not a CMID (a UUID) or the start of one", {"cmid": text}
        )
    found = await store.cmids_with_prefix(given, limit=SHOWN_MATCHES + 1)
    if not found:
        raise NotFound(
            f"no client whose CMID starts with {given} is known to this host", {"cmid": given}
        )
    if len(found) > 1:
        shown = ", ".join(found[:SHOWN_MATCHES]) + (", …" if len(found) > SHOWN_MATCHES else "")
        raise ConfigurationError(
            f"{given} is the start of more than one CMID ({shown}); type more of it",
            {"cmid": given, "matches": found[:SHOWN_MATCHES]},
        )
    return found[0]


def set_blocked(url: str, cmid: str, blocked: bool, now: int) -> tuple[str, int]:
    """Block (or unblock) the CMID that ``cmid`` names (:func:`resolve_cmid`) in every group;
    the CMID and how many groups changed."""

    async def work(store: Store) -> tuple[str, int]:
        full = await resolve_cmid(store, cmid)
        changed = await (store.block(full, now) if blocked else store.unblock(full, now))
        return full, changed

    return with_store(url, work)
