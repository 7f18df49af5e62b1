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
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

from volact.clock import system_clock
from volact.core.errors import BadRequest
from volact.core.protocol import DEFAULT_PORT

if TYPE_CHECKING:
    from volact.host.service import HostService
    from volact.net.dns import DNSServer, TSIGKey
    from volact.store.base import EventRecord, KnownClient, Store

HOST_DIR_ENV = "VOLACT_HOST_DIR"
# `host status` reads this many of the newest events of each DNS kind to find the last result per
# domain (a failing domain is retried hourly; every domain succeeds at most daily).
DNS_EVENTS_READ = 500
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
        help="Database URL: sqlite:///PATH, postgresql://USER@HOST/DB or memory:// "
        "(default: sqlite:///DIR/host.db).",
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
    return system_clock()


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
        "details": event.details,
    }


def _event_line(event: EventRecord) -> str:
    details = event.details
    summary = details.get("outcome") or details.get("reason") or details.get("domain") or ""
    parts = [iso(event.at) or "", event.kind, event.cmid or "-", event.group or "-", str(summary)]
    return "  ".join(parts).rstrip()


def _dns_results(events: list[EventRecord]) -> list[dict[str, Any]]:
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


def _dns_result_lines(entry: dict[str, Any]) -> list[str]:
    where = ""
    if entry["target"] and entry["port"]:
        where = f" ({entry['name'] or 'SRV'} -> {entry['target']}:{entry['port']}"
        where += f" via {entry['server']})" if entry["server"] else ")"
    if entry["ok"]:
        return [f"  {entry['domain']}: published at {entry['at']}{where}"]
    lines = [f"  {entry['domain']}: FAILED ({entry['reason'] or 'error'}) at {entry['at']}{where}"]
    if entry["error"]:
        lines.append(f"    {entry['error']}")
    return lines


def _shown_url(url: str) -> str:
    """The database URL fit to print. SQLite and memory URLs hold no password and are shown as
    given: ``redact_url`` rebuilds URLs with ``urlunsplit``, which drops the empty host of
    ``sqlite:////abs/path`` (it printed ``sqlite://abs/path``)."""
    from volact.store import redact_url

    if url.startswith(("sqlite:", "memory:")):
        return url
    return redact_url(url)


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


# --- serve, and publishing the host in DNS -----------------------------------------------------

# A TSIG key file is a few hundred bytes; anything far larger is not one.
TSIG_KEY_FILE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class DNSPublishing:
    """What ``serve --publish-dns`` publishes, checked before the host binds its port."""

    domains: list[str]
    server: DNSServer
    key: TSIGKey
    target: str
    priority: int
    weight: int
    service: str


def _split_domains(given: tuple[str, ...]) -> list[str]:
    """``--publish-dns`` values (repeated, or comma lists), normalised, duplicates dropped."""
    from volact.net import dns

    domains: list[str] = []
    for value in given:
        for part in value.split(","):
            if not part.strip():
                continue
            domain = dns.normalize_name(part)
            if domain not in domains:
                domains.append(domain)
    return domains


def srv_service_name(text: str | None) -> str:
    """The SRV service name (``_volact._tcp``, or a product's own, e.g. ``_writer._tcp``)."""
    from volact.core.descriptor import DEFAULT_SRV_SERVICE
    from volact.net import dns

    if text is None:
        return DEFAULT_SRV_SERVICE
    name = text.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(labels) != 2 or not all(label.startswith("_") and len(label) > 1 for label in labels):
        raise BadRequest(
            f"--srv-service {text!r} must look like _volact._tcp (two labels, each with a "
            "leading underscore)",
            {"field": "srv_service"},
        )
    return dns.normalize_name(name, what="--srv-service")


def read_tsig_key(path: str) -> TSIGKey:
    """The key in a BIND key file (as ``tsig-keygen`` writes it); ``BadRequest`` naming the file
    when it cannot be read or is not a key file. The secret never appears in a message."""
    from volact.net import dns

    try:
        with open(path, "rb") as handle:
            data = handle.read(TSIG_KEY_FILE_LIMIT + 1)
    except OSError as exc:
        raise BadRequest(
            f"cannot read the TSIG key file {path}: {exc.strerror or exc}", {"field": "tsig_key"}
        ) from None
    if len(data) > TSIG_KEY_FILE_LIMIT:
        raise BadRequest(
            f"{path} is too large for a TSIG key file (over {TSIG_KEY_FILE_LIMIT} bytes)",
            {"field": "tsig_key"},
        )
    try:
        return dns.parse_tsig_key_file(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(
            f"{path} is not a TSIG key file (not text)", {"field": "tsig_key"}
        ) from None
    except BadRequest as error:
        raise BadRequest(f"{path}: {error.message}", error.details) from None


def _default_target() -> str:
    """This machine's fully qualified name, or ``BadRequest`` when it has none: an SRV target
    must be a name the clients can resolve, and a bare host name (or ``localhost``) is not."""
    fqdn = socket.getfqdn().strip().rstrip(".").lower()
    if "." not in fqdn or fqdn.endswith((".localdomain", ".localhost", ".local")):
        raise BadRequest(
            f"this machine's name {fqdn!r} is not a fully qualified DNS name that clients can "
            "resolve; give --dns-target NAME",
            {"field": "dns_target"},
        )
    return fqdn


def dns_publishing(
    domains: tuple[str, ...],
    dns_server: str | None,
    tsig_key: str | None,
    dns_target: str | None,
    priority: int | None,
    weight: int | None,
    srv_service: str | None,
) -> DNSPublishing | None:
    """Check ``serve``'s publishing flags (one clear ``BadRequest`` line for the first problem);
    None when the host does not publish."""
    from volact.net import dns

    chosen = _split_domains(domains)
    if not chosen:
        given = [
            flag
            for flag, value in (
                ("--dns-server", dns_server),
                ("--tsig-key", tsig_key),
                ("--dns-target", dns_target),
                ("--priority", priority),
                ("--weight", weight),
                ("--srv-service", srv_service),
            )
            if value is not None
        ]
        if given:
            raise BadRequest(
                f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only with "
                "--publish-dns DOMAIN (the zone to publish this host's SRV record into)",
                {"field": "publish_dns"},
            )
        return None
    missing = [
        flag
        for flag, value in (("--dns-server IP[:PORT]", dns_server), ("--tsig-key FILE", tsig_key))
        if value is None
    ]
    if missing:
        raise BadRequest(
            f"--publish-dns needs {' and '.join(missing)} (the zone's primary DNS server and the "
            "TSIG key file that signs the updates; see docs/dns.md)",
            {"field": "publish_dns"},
        )
    assert dns_server is not None and tsig_key is not None
    server = dns.DNSServer.parse(dns_server)
    key = read_tsig_key(tsig_key)
    service = srv_service_name(srv_service)
    target = (
        dns.normalize_name(dns_target, what="--dns-target")
        if dns_target is not None
        else _default_target()
    )
    return DNSPublishing(
        domains=chosen,
        server=server,
        key=key,
        target=target,
        priority=priority or 0,
        weight=weight or 0,
        service=service,
    )


class _Listening:
    """The port the host really listens on (``--port 0`` picks one), learnt from serve's ready
    callback, which runs before any background job."""

    port: int | None = None


def _publishing_job(
    publishing: DNSPublishing, listening: _Listening
) -> Callable[[HostService, asyncio.Event], Awaitable[None]]:
    """The background job that publishes at start and every 24 hours (retrying a failed domain
    after an hour) through ``SRVPublisher``; its events go to the host's event log."""

    async def publish_dns(service: HostService, stopping: asyncio.Event) -> None:
        from volact.host.publisher import SRVPublisher, logger

        port = listening.port
        if port is None:  # serve() reports the port before starting jobs; kept as a guard.
            logger.error("not publishing in DNS: the listening port is unknown")
            return
        publisher = SRVPublisher(
            publishing.domains,
            service=publishing.service,
            target=publishing.target,
            port=port,
            priority=publishing.priority,
            weight=publishing.weight,
            server=publishing.server,
            key=publishing.key,
            on_event=service.note_event,
            clock=service.clock,
        )
        await publisher.run(stopping)

    return publish_dns


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
    help="Log level (JSON lines on stderr: refused or failed requests at info, every "
    "request at debug).",
)
@click.option(
    "--publish-dns",
    "publish_domains",
    multiple=True,
    metavar="DOMAIN",
    help="Publish this host's SRV record into the zone DOMAIN by dynamic update (RFC 2136), at "
    "start and every 24 hours; repeatable, or a comma list.",
)
@click.option(
    "--dns-server",
    metavar="IP[:PORT]",
    default=None,
    help="With --publish-dns: the zone's primary DNS server, which takes the updates (port 53).",
)
@click.option(
    "--tsig-key",
    metavar="FILE",
    default=None,
    help="With --publish-dns: the TSIG key file (as tsig-keygen writes it) signing the updates.",
)
@click.option(
    "--dns-target",
    metavar="NAME",
    default=None,
    help="With --publish-dns: the host name clients connect to (default: this machine's fully "
    "qualified name).",
)
@click.option(
    "--priority",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="N",
    help="With --publish-dns: the SRV priority (default 0; lower is tried first).",
)
@click.option(
    "--weight",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="N",
    help="With --publish-dns: the SRV weight (default 0; the share among hosts of one priority).",
)
@click.option(
    "--srv-service",
    metavar="NAME",
    default=None,
    help="With --publish-dns: the SRV service name of the products served (default "
    "_volact._tcp; a product descriptor may name its own, e.g. _writer._tcp).",
)
def serve(
    directory: str | None,
    database_url: str | None,
    port: int | None,
    bind: str,
    rate_limit: float,
    log_level: str,
    publish_domains: tuple[str, ...],
    dns_server: str | None,
    tsig_key: str | None,
    dns_target: str | None,
    priority: int | None,
    weight: int | None,
    srv_service: str | None,
) -> None:
    """Answer activation requests until SIGTERM or Ctrl-C.

    Prints `volact host listening on http://ADDR:PORT` once it accepts requests. On SIGTERM it
    stops accepting, finishes the requests in flight, commits every write and exits 0.

    With --publish-dns it also publishes its SRV record (target NAME, the port it listens on)
    into each domain; a failure is a dns_publish_failed event and never stops the host.
    """
    from volact.host.server import ServeOptions, _print_ready
    from volact.host.server import serve as run

    # Every flag is checked before anything is opened or bound.
    publishing = dns_publishing(
        publish_domains, dns_server, tsig_key, dns_target, priority, weight, srv_service
    )
    options = ServeOptions(
        directory=resolve_host_dir(directory),
        database_url=database_url,
        bind=bind,
        port=port,
        rate_limit=rate_limit,
        log_level=log_level,
    )
    listening = _Listening()

    def ready(url: str) -> None:
        listening.port = urlsplit(url).port
        _print_ready(url)

    if publishing is not None:
        options.background.append(_publishing_job(publishing, listening))
    run(options, on_ready=ready)


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
            *await store.events(limit=DNS_EVENTS_READ, kind="dns_published"),
            *await store.events(limit=DNS_EVENTS_READ, kind="dns_publish_failed"),
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
        "database": _shown_url(url),
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
    # `serve --port` may override host.json's port, and status (another process) cannot see it.
    click.echo(f"Default port:   {settings.port} (host.json; `serve --port` overrides it)")
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
            for line in _dns_result_lines(entry):
                click.echo(line)
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
    records: list[KnownClient] = _with_store(
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
    _table(rows, ["CMID", "GROUP", "MACHINE", "REPORTED STATE", "LAST SEEN", "VALID UNTIL", ""])


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
    help="Domain to publish under (repeatable, or a comma list; default: this machine's domain).",
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
@click.option(
    "--srv-service",
    metavar="NAME",
    default=None,
    help="The SRV service name (default _volact._tcp; a product descriptor may name its own).",
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
    srv_service: str | None,
) -> None:
    """Print the DNS SRV records that let clients find this host (zone-file lines).

    Publish them by hand, or let `volact host serve` publish them by dynamic update.
    """
    from volact.host.identity import HostFiles
    from volact.net import dns

    service = srv_service_name(srv_service)
    machine_domain, fqdn = _machine_domain()
    chosen = _split_domains(domains)
    if not chosen:
        if machine_domain is None:
            raise BadRequest(
                f"this machine's name ({fqdn}) has no domain part; give --domain DOMAIN"
            )
        chosen = [dns.normalize_name(machine_domain)]
    if port is None:
        files = HostFiles(resolve_host_dir(directory))
        port = files.settings().port if files.exists() else DEFAULT_PORT
    name = dns.normalize_name(target, what="target") if target else _default_target()
    lines = dns.zone_lines(
        chosen,
        service,
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
                    "owner": f"{dns.srv_owner(service, domain)}.",
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
