"""`volact host …`: run the activation host and administer it.

Every command takes ``--dir`` (else ``VOLACT_HOST_DIR``, else ``/var/lib/volact/host`` when
writable, else the user's data directory; see :func:`resolve_host_dir`). The admin commands
(``status``, ``clients``, ``events``, ``block``, ``unblock``) read and write the store directly,
so they work while ``volact host serve`` runs (SQLite in WAL mode lets them), and take ``--db``
like ``serve``. Times are printed as ISO 8601 UTC. Commands that print data take ``--json``.

``host init`` and ``host activate`` live in :mod:`volact.cli.host_certify`.

Heavy modules (the server, the store) are imported inside the commands so that ``volact
--help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from volact.core.errors import BadRequest
from volact.core.protocol import DEFAULT_PORT

if TYPE_CHECKING:
    from volact.store.base import ClientRecord, EventRecord, Store

HOST_DIR_ENV = "VOLACT_HOST_DIR"
SYSTEM_HOST_DIR = Path("/var/lib/volact/host")

F = TypeVar("F", bound=Callable[..., Any])


# --- shared helpers (other `host` command modules may use them) --------------------------------


def resolve_host_dir(given: str | Path | None) -> Path:
    """The host directory: ``--dir``, else ``$VOLACT_HOST_DIR``, else ``/var/lib/volact/host``
    when writable (or creatable), else the user's data directory (see :mod:`volact.paths`)."""
    from volact.paths import resolve_dir

    return resolve_dir("host", given)


def dir_option(function: F) -> F:
    """``--dir DIR``: the host directory."""
    return click.option(
        "--dir",
        "directory",
        metavar="DIR",
        default=None,
        help=f"Host directory (default: ${HOST_DIR_ENV}, else {SYSTEM_HOST_DIR} when writable, "
        "else the user's data directory).",
    )(function)


def db_option(function: F) -> F:
    """``--db URL``: the store (default: the host directory's host.db)."""
    return click.option(
        "--db",
        "database_url",
        metavar="URL",
        default=None,
        help="Database URL: sqlite:///PATH or memory:// (default: sqlite:///DIR/host.db).",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(function)


def iso(timestamp: int | None) -> str | None:
    """Unix seconds as ISO 8601 UTC (``2026-01-31T12:00:00Z``); None stays None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _now() -> int:
    return int(time.time())


def _store_url(directory: Path, database_url: str | None) -> str:
    from volact.host.identity import HostFiles

    if database_url:
        return database_url
    files = HostFiles(directory)
    files.settings()  # a clear "no host in DIR; run `volact host init`" when there is none
    return files.database_url


@asynccontextmanager
async def _opened(url: str) -> AsyncIterator[Store]:
    from volact.store import open_store

    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _with_store(url: str, work: Callable[[Store], Any]) -> Any:
    """Run ``await work(store)`` on the opened store of ``url``."""

    async def main() -> Any:
        async with _opened(url) as store:
            return await work(store)

    return asyncio.run(main())


def _cmid(text: str) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise BadRequest(f"{text!r} is not a CMID (a UUID)", {"cmid": text}) from None


def client_json(record: ClientRecord) -> dict[str, Any]:
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
        "details": event.details,
    }


def _event_line(event: EventRecord) -> str:
    details = event.details
    summary = details.get("outcome") or details.get("reason") or details.get("domain") or ""
    parts = [iso(event.at) or "", event.kind, event.cmid or "-", event.group or "-", str(summary)]
    return "  ".join(parts).rstrip()


def _dns_results(events: list[EventRecord]) -> list[dict[str, Any]]:
    """The latest DNS publishing result per domain, from the event log."""
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
        }
        for domain, event in sorted(latest.items())
    ]


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# --- the group ---------------------------------------------------------------------------------


@click.group()
def host() -> None:
    """The activation host a customer runs in its network.

    \b
    serve         answer activation requests (port 7688)
    status        host id, certificate, counts per group, statistics
    clients       the clients this host knows
    events        the event log
    block/unblock refuse or readmit a client (CMID)
    dns-records   the SRV record lines to publish by hand
    """


@host.command()
@dir_option
@db_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"TCP port (default: host.json's port, {DEFAULT_PORT}; 0 picks a free one).",
)
@click.option(
    "--bind",
    default="0.0.0.0",
    show_default=True,
    metavar="ADDR",
    help="Address to listen on (0.0.0.0 = every IPv4 interface, :: = IPv6 too).",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0),
    default=100.0,
    show_default=True,
    metavar="N",
    help="Requests a second per client address, in bursts of up to 2N; 0 turns it off.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level (JSON lines on stderr; one line per request at info).",
)
def serve(
    directory: str | None,
    database_url: str | None,
    port: int | None,
    bind: str,
    rate_limit: float,
    log_level: str,
) -> None:
    """Answer activation requests until SIGTERM or Ctrl-C.

    Prints `volact host listening on http://ADDR:PORT` once it accepts requests. On SIGTERM it
    stops accepting, finishes the requests in flight, commits every write and exits 0.
    """
    # Flags for more features (e.g. DNS publishing) go above; a long-running job is added to
    # options.background (see volact.host.server.ServeOptions).
    from volact.host.server import ServeOptions
    from volact.host.server import serve as run

    options = ServeOptions(
        directory=resolve_host_dir(directory),
        database_url=database_url,
        bind=bind,
        port=port,
        rate_limit=rate_limit,
        log_level=log_level,
    )
    run(options)


@host.command()
@dir_option
@db_option
@json_option
def status(directory: str | None, database_url: str | None, as_json: bool) -> None:
    """Show the host's id, certificate, counts per group and statistics (like slmgr /dlv)."""
    from volact.core.durations import format_duration
    from volact.core.errors import HostNotActivated
    from volact.host.identity import HostFiles
    from volact.host.service import check_certificate
    from volact.store import redact_url

    root = resolve_host_dir(directory)
    files = HostFiles(root)
    settings = files.settings()
    try:
        token: str | None = files.certificate_token()
    except HostNotActivated:
        token = None
    certificate_status = check_certificate(settings, files.signing_key().public_key, token)
    certificate = certificate_status.certificate
    url = database_url or files.database_url
    now = _now()

    async def read(store: Store) -> tuple[Any, ...]:
        dns_events = [
            *await store.events(limit=50, kind="dns_published"),
            *await store.events(limit=50, kind="dns_publish_failed"),
        ]
        return (
            await store.counts(now),
            await store.stats(),
            await store.events(limit=5),
            dns_events,
        )

    counts, stats, recent, dns_events = _with_store(url, read)
    reason = certificate_status.explain(now)
    groups: list[dict[str, Any]] = []
    names = sorted(set(counts) | set(certificate.groups if certificate else {}))
    for name in names:
        policy = certificate.groups.get(name) if certificate else None
        entry: dict[str, Any] = {"group": name, "count": counts.get(name, 0)}
        if policy is not None:
            renewal = settings.renewal_interval or policy.renewal_interval
            retry = settings.retry_interval or policy.retry_interval
            entry.update(
                threshold=policy.threshold,
                activating=counts.get(name, 0) >= policy.threshold,
                validity=policy.validity,
                renewal_interval=renewal,
                retry_interval=retry,
            )
        else:
            entry.update(threshold=None, activating=False)  # counted once, no longer certified
        groups.append(entry)
    data: dict[str, Any] = {
        "host_id": settings.host_id,
        "directory": str(root),
        "database": redact_url(url),
        "port": settings.port,
        "activated": not reason,
        "reason": reason or None,
        "certificate": None,
        "groups": groups,
        "statistics": stats.to_json(),
        "dns_publishing": _dns_results(dns_events),
        "recent_events": [event_json(event) for event in recent],
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
    if as_json:
        _print_json(data)
        return

    click.echo(f"Host id:        {settings.host_id}")
    click.echo(f"Directory:      {root}")
    click.echo(f"Database:       {data['database']}")
    click.echo(f"Port:           {settings.port}")
    click.echo(f"Activated:      {'yes' if not reason else 'no: ' + reason}")
    if certificate is not None:
        click.echo(
            f"Certificate:    {certificate.cert_id} for {certificate.customer} "
            f"(host key {certificate.key_serial})"
        )
        click.echo(f"Valid:          {iso(certificate.not_before)} to {iso(certificate.not_after)}")
    click.echo("Groups:")
    if not groups:
        click.echo("  (none)")
    for entry in groups:
        if entry["threshold"] is None:
            click.echo(f"  {entry['group']}: {entry['count']} clients (not certified)")
            continue
        state = "activating" if entry["activating"] else "below the threshold"
        click.echo(
            f"  {entry['group']}: {entry['count']} of {entry['threshold']} clients ({state}); "
            f"validity {format_duration(entry['validity'])}, renewal "
            f"{format_duration(entry['renewal_interval'])}, retry "
            f"{format_duration(entry['retry_interval'])}"
        )
    click.echo(f"Requests:       {stats.total} total, {stats.failed} failed")
    if stats.by_outcome:
        outcomes = ", ".join(f"{name} {value}" for name, value in stats.by_outcome.items())
        click.echo(f"  by outcome:   {outcomes}")
    if stats.by_state:
        states = ", ".join(f"{name} {value}" for name, value in stats.by_state.items())
        click.echo(f"  by state:     {states}")
    if data["dns_publishing"]:
        click.echo("DNS publishing:")
        for entry in data["dns_publishing"]:
            result = "published" if entry["ok"] else f"FAILED ({entry['reason'] or 'error'})"
            click.echo(f"  {entry['domain']}: {result} at {entry['at']}")
    click.echo("Recent events:")
    if not recent:
        click.echo("  (none)")
    for event in recent:
        click.echo(f"  {_event_line(event)}")


@host.command()
@dir_option
@db_option
@json_option
@click.option("--group", default=None, help="Only this product group.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=1000, show_default=True, help="At most N."
)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip the first N.")
def clients(
    directory: str | None,
    database_url: str | None,
    as_json: bool,
    group: str | None,
    limit: int,
    offset: int,
) -> None:
    """List the clients (CMIDs) this host knows, by group and first request."""
    url = _store_url(resolve_host_dir(directory), database_url)
    records: list[ClientRecord] = _with_store(
        url, lambda store: store.clients(group, limit=limit, offset=offset)
    )
    if as_json:
        _print_json([client_json(record) for record in records])
        return
    if not records:
        click.echo("no clients")
        return
    rows = [
        [
            record.cmid,
            record.group,
            record.machine,
            record.state,
            iso(record.last_seen) or "",
            iso(record.valid_until) or "-",
            "blocked" if record.blocked else "",
        ]
        for record in records
    ]
    _table(rows, ["CMID", "GROUP", "MACHINE", "STATE", "LAST SEEN", "VALID UNTIL", ""])


@host.command()
@dir_option
@db_option
@json_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="The newest N."
)
@click.option("--kind", default=None, help="Only this kind (activation_request, cloned_image, …).")
def events(
    directory: str | None,
    database_url: str | None,
    as_json: bool,
    limit: int,
    kind: str | None,
) -> None:
    """Show the event log, newest first."""
    url = _store_url(resolve_host_dir(directory), database_url)
    found: list[EventRecord] = _with_store(url, lambda store: store.events(limit=limit, kind=kind))
    if as_json:
        _print_json([event_json(event) for event in found])
        return
    if not found:
        click.echo("no events")
    for event in found:
        click.echo(_event_line(event))


def _set_blocked(
    directory: str | None, database_url: str | None, cmid: str, blocked: bool, as_json: bool
) -> None:
    url = _store_url(resolve_host_dir(directory), database_url)
    normalised = _cmid(cmid)
    now = _now()
    changed: int = _with_store(
        url,
        lambda store: store.block(normalised, now) if blocked else store.unblock(normalised, now),
    )
    if as_json:
        _print_json({"cmid": normalised, "blocked": blocked, "groups": changed})
        return
    verb = "blocked" if blocked else "unblocked"
    click.echo(f"{verb} {normalised} ({changed} group{'s' if changed != 1 else ''})")


@host.command()
@click.argument("cmid")
@dir_option
@db_option
@json_option
def block(cmid: str, directory: str | None, database_url: str | None, as_json: bool) -> None:
    """Refuse CMID from now on (client_blocked); it no longer counts."""
    _set_blocked(directory, database_url, cmid, True, as_json)


@host.command()
@click.argument("cmid")
@dir_option
@db_option
@json_option
def unblock(cmid: str, directory: str | None, database_url: str | None, as_json: bool) -> None:
    """Readmit a blocked CMID."""
    _set_blocked(directory, database_url, cmid, False, as_json)


def _machine_domain() -> tuple[str | None, str]:
    """(the domain part of this machine's FQDN or None, the FQDN)."""
    fqdn = socket.getfqdn().rstrip(".")
    domain = fqdn.partition(".")[2]
    return (domain or None), fqdn


@host.command("dns-records")
@dir_option
@json_option
@click.option(
    "--domain",
    "--publish-dns",
    "domains",
    multiple=True,
    metavar="DOMAIN",
    help="Domain to publish under (repeatable; default: this machine's domain).",
)
@click.option(
    "--target",
    "--dns-target",
    default=None,
    metavar="NAME",
    help="The name clients connect to (default: this machine's fully qualified name).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Default: host.json's port."
)
@click.option(
    "--priority",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="SRV priority (lower is tried first).",
)
@click.option(
    "--weight",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="SRV weight (share among hosts of one priority); the same default as publishing.",
)
@click.option(
    "--ttl", type=click.IntRange(0, 2**31 - 1), default=3600, show_default=True, help="TTL (s)."
)
def dns_records(
    directory: str | None,
    as_json: bool,
    domains: tuple[str, ...],
    target: str | None,
    port: int | None,
    priority: int,
    weight: int,
    ttl: int,
) -> None:
    """Print the DNS SRV records that let clients find this host (zone-file lines).

    Publish them by hand, or let `volact host serve` publish them by dynamic update.
    """
    from volact.core.descriptor import DEFAULT_SRV_SERVICE
    from volact.host.identity import HostFiles
    from volact.net import dns

    machine_domain, fqdn = _machine_domain()
    chosen = [dns.normalize_name(domain) for domain in domains]
    if not chosen:
        if machine_domain is None:
            raise BadRequest(
                f"this machine's name ({fqdn}) has no domain part; give --domain DOMAIN"
            )
        chosen = [dns.normalize_name(machine_domain)]
    if port is None:
        files = HostFiles(resolve_host_dir(directory))
        port = files.settings().port if files.exists() else DEFAULT_PORT
    name = dns.normalize_name(target or fqdn, what="target")
    lines = dns.zone_lines(
        chosen,
        DEFAULT_SRV_SERVICE,
        target=name,
        port=port,
        priority=priority,
        weight=weight,
        ttl=ttl,
    )
    if as_json:
        _print_json(
            [
                {
                    "owner": f"{dns.srv_owner(DEFAULT_SRV_SERVICE, domain)}.",
                    "ttl": ttl,
                    "priority": priority,
                    "weight": weight,
                    "port": port,
                    "target": f"{name}.",
                    "line": line,
                }
                for domain, line in zip(chosen, lines, strict=True)
            ]
        )
        return
    for line in lines:
        click.echo(line)
