"""DNS publishing set-up: ``volact host serve --publish-dns`` and ``volact host dns-records``.

:func:`dns_publishing` checks the publishing flags (one clear
:class:`~volact.core.errors.ConfigurationError` for the first problem) and reads the TSIG key
file, all before the host binds its port; :func:`publishing_job` makes the background job that
runs :class:`~volact.host.publisher.SRVPublisher` while the host serves; :func:`manual_records`
makes the SRV records an admin publishes by hand.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volact.core.descriptor import DEFAULT_SRV_SERVICE
from volact.core.errors import BadRequest, ConfigurationError, NotFound, VolactError
from volact.core.protocol import DEFAULT_PORT
from volact.fileio import read_bytes
from volact.host.identity import HostFiles
from volact.net import dns

if TYPE_CHECKING:
    from volact.host.service import HostService

# A TSIG key file is a few hundred bytes; anything far larger is not one.
TSIG_KEY_FILE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class DNSPublishing:
    """What ``serve --publish-dns`` publishes, checked before the host binds its port."""

    domains: list[str]
    server: dns.DNSServer
    key: dns.TSIGKey
    target: str
    priority: int
    weight: int
    service: str


def split_domains(given: tuple[str, ...]) -> list[str]:
    """``--publish-dns`` values (repeated, or comma lists), normalised, duplicates dropped."""
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
    if text is None:
        return DEFAULT_SRV_SERVICE
    name = text.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(labels) != 2 or not all(label.startswith("_") and len(label) > 1 for label in labels):
        raise ConfigurationError(
            f"--srv-service {text!r} must look like _volact._tcp (two labels, each with a "
            "leading underscore)",
            {"field": "srv_service"},
        )
    return dns.normalize_name(name, what="--srv-service")


def read_tsig_key(path: str) -> dns.TSIGKey:
    """The key in a BIND key file (as ``tsig-keygen`` writes it); ``ConfigurationError`` naming
    the file when it cannot be read or is not a key file. The secret never appears in a
    message."""
    try:
        data = read_bytes(Path(path), what="TSIG key file", limit=TSIG_KEY_FILE_LIMIT)
    except NotFound as error:
        raise ConfigurationError(
            f"cannot read the TSIG key file {path}: No such file or directory",
            {"field": "tsig_key"},
        ) from error
    except VolactError as error:
        raise ConfigurationError(error.message, {"field": "tsig_key"}) from error
    try:
        return dns.parse_tsig_key_file(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not a TSIG key file (not text)", {"field": "tsig_key"}
        ) from exc
    except BadRequest as error:
        raise ConfigurationError(f"{path}: {error.message}", error.details) from error


def default_target() -> str:
    """This machine's fully qualified name, or ``ConfigurationError`` when it has none: an SRV
    target must be a name the clients can resolve, and a bare host name (or ``localhost``) is
    not."""
    fqdn = socket.getfqdn().strip().rstrip(".").lower()
    if "." not in fqdn or fqdn.endswith((".localdomain", ".localhost", ".local")):
        raise ConfigurationError(
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
    """Check ``serve``'s publishing flags (one clear ``ConfigurationError`` line for the first
    problem); None when the host does not publish."""
    chosen = split_domains(domains)
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
            raise ConfigurationError(
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
        raise ConfigurationError(
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
        else default_target()
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


class ListeningPort:
    """The port the host really listens on (``--port 0`` picks one), learnt from serve's ready
    callback, which runs before any background job."""

    port: int | None = None


def publishing_job(
    publishing: DNSPublishing, listening: ListeningPort
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


@dataclass(frozen=True)
class ManualRecords:
    """The SRV records to publish by hand: one zone-file line per domain, and each as JSON."""

    lines: list[str]
    records: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)  # warnings for stderr


def _short_name_in(domain: str) -> str | None:
    """This machine's short host name under ``domain`` (for a machine without a fully
    qualified name), or None when it has no usable name either."""
    short = socket.gethostname().strip().split(".", 1)[0].lower()
    if not short or short == "localhost":
        return None
    return dns.normalize_name(f"{short}.{domain}", what="target")


def manual_records(
    domains: tuple[str, ...],
    *,
    directory: Path,
    target: str | None,
    port: int | None,
    priority: int,
    weight: int,
    ttl: int,
    srv_service: str | None,
) -> ManualRecords:
    """The records ``volact host dns-records`` prints: under each domain (default: this
    machine's domain), pointing at ``target`` (default: this machine's name) and ``port``
    (default: the port in ``directory``'s host.json, else 7688, with a note that ``serve`` may
    listen elsewhere). A machine without a fully qualified name gets its short name under the
    first domain as the target, with a note to check it."""
    notes: list[str] = []
    service = srv_service_name(srv_service)
    fqdn = socket.getfqdn().rstrip(".")
    machine_domain = fqdn.partition(".")[2] or None
    chosen = split_domains(domains)
    if not chosen:
        if machine_domain is None:
            raise ConfigurationError(
                f"this machine's name ({fqdn}) has no domain part; give --domain DOMAIN"
            )
        chosen = [dns.normalize_name(machine_domain)]
    if port is None:
        files = HostFiles(directory)
        port = files.settings().port if files.exists() else DEFAULT_PORT
        notes.append(
            f"port {port} is host.json's; if `volact host serve` listens on another port "
            "(--port, or port in its --config file), give --port N or --config FILE"
        )
    if target:
        name = dns.normalize_name(target, what="target")
    else:
        try:
            name = default_target()
        except ConfigurationError:
            fallback = _short_name_in(chosen[0])
            if fallback is None:
                raise
            name = fallback
            notes.append(
                f"this machine has no fully qualified name; the target is {name}: check that "
                "clients resolve it, or give --target NAME"
            )
    lines = dns.zone_lines(
        chosen, service, target=name, port=port, priority=priority, weight=weight, ttl=ttl
    )
    records = [
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
    return ManualRecords(lines, records, notes)
