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

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from volact.cli._output import json_option, print_json, print_table
from volact.cli.host_config import config_option
from volact.clock import system_clock
from volact.core.protocol import DEFAULT_PORT

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
        help="Database URL: sqlite:///PATH, postgresql://USER@HOST/DB or memory:// "
        "(default: sqlite:///DIR/host.db).",
    )(function)


def _event_line(event: dict[str, Any]) -> str:
    details = event["details"]
    summary = details.get("outcome") or details.get("reason") or details.get("domain") or ""
    parts = [
        event["at"] or "",
        event["kind"],
        event["cmid"] or "-",
        event["group"] or "-",
        event.get("machine") or "-",
    ]
    return "  ".join([*parts, str(summary)]).rstrip()


def _dns_result_lines(entry: dict[str, Any]) -> list[str]:
    where = ""
    if entry["target"] and entry["port"]:
        where = f" ({entry['name'] or 'SRV'} -> {entry['target']}:{entry['port']}"
        where += f" via {entry['server']})" if entry["server"] else ")"
    if entry["ok"]:
        line = f"  {entry['domain']}: published at {entry['at']}{where}"
        in_dns = entry.get("in_dns", "unchecked")
        if in_dns is True:
            return [f"{line}; in DNS now"]
        if in_dns is None:
            return [f"{line}; not checked now: the DNS server gave {entry.get('dns_now')}"]
        if in_dns is False:
            return [
                f"{line}; NOT in DNS now ({entry.get('dns_now')}): the record was removed "
                "from the zone",
                "    clients cannot find this host by DNS; the running host publishes it again "
                "at its daily refresh, or restart `volact host serve` to publish it now",
            ]
        return [line]
    lines = [f"  {entry['domain']}: FAILED ({entry['reason'] or 'error'}) at {entry['at']}{where}"]
    if entry["error"]:
        lines.append(f"    {entry['error']}")
    return lines


# --- the group ---------------------------------------------------------------------------------


@click.group(short_help="The activation host a customer runs in its network.")
def host() -> None:
    """The activation host a customer runs in its network (port 7688)."""


# --- serve, and publishing the host in DNS -----------------------------------------------------


@host.command()
@config_option
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
    "--usage-interval",
    type=click.FloatRange(min=0.01),
    default=900.0,
    show_default=True,
    metavar="SECONDS",
    help="How often the signed usage log records the clients' count-relevant events (SQLite "
    "and PostgreSQL stores).",
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
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Time a client has to send a request's head, from its first byte (default 10).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Time a client has to send a request's body, after its head (default 10).",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Time a kept-alive connection may stay idle between requests (default 5).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Connections open at once, in all (default 8192; always kept below the open-files "
    "limit, whose soft value is raised to the hard one at start).",
)
@click.option(
    "--max-connections-per-address",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Connections open at once from one client address (default 128); more are refused "
    "at once (429 rate_limited).",
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
@click.option(
    "--admin-port",
    type=click.IntRange(0, 65535),
    default=7690,
    show_default=True,
    help="The admin listener's port (admin API, dashboard, /metrics; 0 picks a free one). It "
    "starts when the host has an admin token (`volact host init` makes it).",
)
@click.option(
    "--admin-bind",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDR",
    help="The admin listener's address; give another than 127.0.0.1 only to expose it.",
)
@click.option("--no-admin", is_flag=True, help="Start no admin listener.")
@click.option(
    "--metrics/--no-metrics",
    default=True,
    show_default=True,
    help="Record Prometheus metrics (served at the admin listener's /metrics).",
)
def serve(
    directory: str | None,
    database_url: str | None,
    port: int | None,
    bind: str,
    rate_limit: float,
    usage_interval: float,
    log_level: str,
    header_timeout: float | None,
    body_timeout: float | None,
    idle_timeout: float | None,
    max_connections: int | None,
    max_connections_per_address: int | None,
    publish_domains: tuple[str, ...],
    dns_server: str | None,
    tsig_key: str | None,
    dns_target: str | None,
    priority: int | None,
    weight: int | None,
    srv_service: str | None,
    admin_port: int,
    admin_bind: str,
    no_admin: bool,
    metrics: bool,
) -> None:
    """Answer activation requests until SIGTERM or Ctrl-C.

    Prints `volact host listening on http://ADDR:PORT` once it accepts requests. On SIGTERM it
    stops accepting, finishes the requests in flight, commits every write and exits 0.

    With --publish-dns it also publishes its SRV record (target NAME, the port it listens on)
    into each domain; a failure is a dns_publish_failed event and never stops the host.

    The admin listener (127.0.0.1:7690 unless --admin-bind/--admin-port) serves the admin API,
    the dashboard and /metrics to holders of the admin token; it prints `volact host admin
    listening on URL` once it accepts requests.
    """
    from dataclasses import replace

    from volact.host import publishing as dns_setup
    from volact.host.server import ServeOptions, _print_ready
    from volact.host.server import serve as run
    from volact.web.http1 import Limits

    # Every flag is checked before anything is opened or bound.
    publishing = dns_setup.dns_publishing(
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
    given: dict[str, Any] = {
        "header_timeout": header_timeout,
        "body_timeout": body_timeout,
        "idle_timeout": idle_timeout,
        "max_connections": max_connections,
        "max_per_address": max_connections_per_address,
    }
    options.limits = replace(Limits(), **{k: v for k, v in given.items() if v is not None})
    listening = dns_setup.ListeningPort()

    def ready(url: str) -> None:
        listening.port = urlsplit(url).port
        _print_ready(url)

    if publishing is not None:
        options.background.append(dns_setup.publishing_job(publishing, listening))
    from volact.host.identity import HostFiles
    from volact.host.usage import usage_job  # the signed usage log (issue 20)

    if not no_admin:
        from volact.host.admin import listener

        admin = listener.AdminOptions(options.directory, admin_bind, admin_port, metrics)
        if listener.has_token(admin):
            serving = port if port is not None else HostFiles(options.directory).settings().port
            listener.check_ports(admin, bind, serving)
            options.background.append(listener.admin_job(admin, listener.print_ready))
        else:
            options.background.append(listener.no_token_notice)

    usage_files = HostFiles(options.directory)
    usage_url = database_url or usage_files.database_url
    if not usage_url.startswith("memory:"):
        options.background.append(usage_job(usage_files, usage_url, usage_interval))
    run(options, on_ready=ready)


@host.command()
@dir_option
@db_option
@json_option
@click.option(
    "--no-dns-check",
    "no_dns_check",
    is_flag=True,
    help="Do not ask the DNS server whether each published SRV record is still there.",
)
def status(
    directory: str | None, database_url: str | None, as_json: bool, no_dns_check: bool
) -> None:
    """Show the host's id, certificate, counts per group and statistics (like slmgr /dlv).

    For each domain the host published its SRV record in, it also asks the DNS server it
    published to whether the record is still there."""
    from volact.core.durations import format_duration
    from volact.host.report import check_published, status_report

    data = status_report(resolve_host_dir(directory), database_url, system_clock())
    if not no_dns_check:
        data["dns_publishing"] = check_published(data["dns_publishing"])
    if as_json:
        print_json(data)
        return

    certificate = data["certificate"]
    click.echo(f"Host id:        {data['host_id']}")
    click.echo(f"Directory:      {data['directory']}")
    click.echo(f"Database:       {data['database']}")
    # `serve --port` may override host.json's port, and status (another process) cannot see it.
    click.echo(f"Default port:   {data['port']} (host.json; `serve --port` overrides it)")
    click.echo(f"Activated:      {'yes' if data['activated'] else 'no: ' + data['reason']}")
    if certificate is not None:
        click.echo(
            f"Certificate:    {certificate['cert_id']} for {certificate['customer']} "
            f"(host key {certificate['key_serial']})"
        )
        click.echo(f"Valid:          {certificate['not_before']} to {certificate['not_after']}")
    revocations = data.get("revocations")
    if revocations is not None:
        late = (
            "; past its next update: `volact host fetch-revocations`"
            if revocations["stale"]
            else ""
        )
        click.echo(
            f"Revocations:    list {revocations['sequence']} ({revocations['certificates']} "
            f"certificate(s), {revocations['host_keys']} host key(s)), issued "
            f"{revocations['issued_at']}{late}"
        )
    click.echo("Groups:")
    if not data["groups"]:
        click.echo("  (none)")
    for entry in data["groups"]:
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
    stats = data["statistics"]
    click.echo(f"Requests:       {stats['total']} total, {stats['failed']} failed")
    if stats["by_outcome"]:
        outcomes = ", ".join(f"{name} {value}" for name, value in stats["by_outcome"].items())
        click.echo(f"  by outcome:   {outcomes}")
    if stats["by_state"]:
        states = ", ".join(f"{name} {value}" for name, value in stats["by_state"].items())
        click.echo(f"  by state:     {states}")
    if data["dns_publishing"]:
        click.echo("DNS publishing:")
        for entry in data["dns_publishing"]:
            for line in _dns_result_lines(entry):
                click.echo(line)
    click.echo("Recent events:")
    if not data["recent_events"]:
        click.echo("  (none)")
    for event in data["recent_events"]:
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
    from volact.host import report

    url = report.store_url(resolve_host_dir(directory), database_url)
    records, total = report.clients(url, group, limit=limit, offset=offset)
    iso = report.iso
    if len(records) < total:
        # On stderr, so that --json stays a plain list; said whenever the page is not all.
        first = offset + 1 if records else offset
        click.echo(
            f"listed {len(records)} of {total} clients ({first} to {offset + len(records)}); "
            "see the others with --limit and --offset",
            err=True,
        )
    if as_json:
        print_json([report.client_json(record) for record in records])
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
    print_table(
        ["CMID", "GROUP", "MACHINE", "REPORTED STATE", "LAST SEEN", "VALID UNTIL", ""], rows
    )


_TIME = "UTC: 2026-01-31T12:00:00Z, 2026-01-31 or Unix seconds."


@host.command()
@dir_option
@db_option
@json_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="The newest N."
)
@click.option("--kind", default=None, help="Only this kind (activation_request, cloned_image, …).")
@click.option("--cmid", default=None, metavar="CMID", help="Only the events of this client.")
@click.option(
    "--since", default=None, metavar="TIME", help=f"Only events at or after TIME. {_TIME}"
)
@click.option(
    "--until", default=None, metavar="TIME", help=f"Only events at or before TIME. {_TIME}"
)
def events(
    directory: str | None,
    database_url: str | None,
    as_json: bool,
    limit: int,
    kind: str | None,
    cmid: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Show the event log, newest first: time, kind, CMID, group, machine name, outcome."""
    from volact.host import report
    from volact.host.admin.params import moment  # the admin API's rule for times

    url = report.store_url(resolve_host_dir(directory), database_url)
    wanted = report.parse_cmid(cmid) if cmid is not None else None
    given = {name: text for name, text in (("--since", since), ("--until", until)) if text}
    start, end = moment(given, "--since", iso=True), moment(given, "--until", iso=True)
    found = [
        report.event_json(event)
        for event in report.events(url, limit=limit, kind=kind, cmid=wanted, since=start, until=end)
    ]
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no events")
    for event in found:
        click.echo(_event_line(event))


def _set_blocked(
    directory: str | None, database_url: str | None, cmid: str, blocked: bool, as_json: bool
) -> None:
    from volact.host import report

    url = report.store_url(resolve_host_dir(directory), database_url)
    normalised, changed = report.set_blocked(url, cmid, blocked, system_clock())
    if as_json:
        print_json({"cmid": normalised, "blocked": blocked, "groups": changed})
        return
    verb = "blocked" if blocked else "unblocked"
    click.echo(f"{verb} {normalised} ({changed} group{'s' if changed != 1 else ''})")
    if blocked:
        click.echo(
            "Blocking is not revocation: the client keeps the activation it holds until its "
            "ticket ends (up to the group's validity, 180 days by default, plus its grace); it "
            "can no longer renew, and it no longer counts."
        )


@host.command()
@click.argument("cmid")
@dir_option
@db_option
@json_option
def block(cmid: str, directory: str | None, database_url: str | None, as_json: bool) -> None:
    """Refuse CMID from now on (client_blocked); it no longer counts or renews.

    CMID may be a unique prefix (the 8 characters `volact host clients` shows). Blocking is not
    revocation: the client stays licensed until its ticket ends (up to 180 days by default, plus
    its grace)."""
    _set_blocked(directory, database_url, cmid, True, as_json)


@host.command()
@click.argument("cmid")
@dir_option
@db_option
@json_option
def unblock(cmid: str, directory: str | None, database_url: str | None, as_json: bool) -> None:
    """Readmit a blocked CMID (whole, or a unique prefix)."""
    _set_blocked(directory, database_url, cmid, False, as_json)
