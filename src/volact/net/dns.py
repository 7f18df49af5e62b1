"""The DNS adapter: SRV queries, address lookups and RFC 2136 publishing with TSIG.

This is the only module that imports dnspython. It imports it lazily, inside the functions that
need it, because importing dnspython costs about a tenth of a second and ``volact client status``
(which never touches DNS) must start fast.

Two kinds of failure are kept apart, as everywhere in volact:

* *Looking up* never raises for a DNS failure: ``query_srv`` returns an ``SRVQueryResult`` whose
  ``outcome`` says what happened ("nxdomain", "noanswer", "timeout", "error: …"), because a
  failed query is a normal step of discovery and ``volact client diagnose`` prints it.
* *Publishing* raises ``DNSPublishError`` with a sentence an admin can act on (the server refused
  the update, did not know the key, timed out, …). The host's publisher turns it into an event.

Bad input from a person (a key file, a server address) raises ``BadRequest``; a key's secret is
never part of a message, a ``repr`` or a log line.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volact.core.descriptor import DEFAULT_SRV_SERVICE
from volact.core.errors import BadRequest, HostUnreachable, VolactError
from volact.core.srv import SRVRecord
from volact.fileio import MAX_SMALL_FILE_BYTES, read_bytes

DNS_PORT = 53
DEFAULT_TTL = 3600

# BIND's algorithm names (what tsig-keygen writes) → the names on the wire. Only HMAC-MD5 differs.
TSIG_ALGORITHMS: dict[str, str] = {
    "hmac-md5": "hmac-md5.sig-alg.reg.int",
    "hmac-sha1": "hmac-sha1",
    "hmac-sha224": "hmac-sha224",
    "hmac-sha256": "hmac-sha256",
    "hmac-sha384": "hmac-sha384",
    "hmac-sha512": "hmac-sha512",
}

_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


# --- names ----------------------------------------------------------------------------------


def normalize_name(name: str, *, what: str = "domain") -> str:
    """A DNS name in lower case without the trailing dot; ``BadRequest`` if it is not one."""
    text = name.strip().rstrip(".").lower()
    if not text or len(text) > 253 or not all(_LABEL.match(label) for label in text.split(".")):
        raise BadRequest(f"{what} {name!r} is not a valid DNS name", {"field": what})
    return text


def srv_owner(service: str, domain: str) -> str:
    """The owner name of the SRV records, e.g. ``_volact._tcp.corp.example`` (no trailing dot)."""
    return f"{service.strip('.')}.{normalize_name(domain)}"


# --- TSIG keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TSIGKey:
    """A TSIG key as BIND writes it. ``algorithm`` is BIND's name (``hmac-sha256``); ``secret`` is
    base64 and is kept out of ``repr`` so a logged key never leaks it."""

    name: str
    algorithm: str
    secret: str = field(repr=False)


# Quoted strings are matched first and kept, so a "//" inside a base64 secret is not a comment.
_COMMENTS = re.compile(r'("[^"]*")|/\*.*?\*/|//[^\n]*|#[^\n]*', re.DOTALL)
_KEY_BLOCK = re.compile(r'\bkey\s+(?:"([^"]*)"|([^\s{";]+))\s*\{(.*?)\}\s*;', re.DOTALL)
_STATEMENT = re.compile(r'^\s*(\w+)\s+(?:"([^"]*)"|([^\s";]+))\s*$')


def parse_tsig_key_file(text: str) -> TSIGKey:
    """Parse a BIND key file, as ``tsig-keygen`` writes it::

        key "volact-host" {
            algorithm hmac-sha256;
            secret "base64…";
        };

    Raises ``BadRequest`` naming what is wrong (never the secret).
    """
    cleaned = _COMMENTS.sub(lambda match: match.group(1) or " ", text)
    blocks = list(_KEY_BLOCK.finditer(cleaned))
    if not blocks:
        raise BadRequest(
            'TSIG key file has no \'key "NAME" { algorithm …; secret "…"; };\' block '
            "(make one with: tsig-keygen -a hmac-sha256 NAME)",
            {"field": "tsig_key"},
        )
    if len(blocks) > 1:
        raise BadRequest(
            f"TSIG key file holds {len(blocks)} keys; give a file with exactly one",
            {"field": "tsig_key"},
        )
    block = blocks[0]
    name = block.group(1) if block.group(1) is not None else block.group(2)
    key_name = normalize_name(name, what="TSIG key name")
    values: dict[str, str] = {}
    for statement in block.group(3).split(";"):
        if not statement.strip():
            continue
        match = _STATEMENT.match(statement)
        if match is None:
            raise BadRequest(
                f"TSIG key {key_name!r}: cannot read a statement in the key block",
                {"field": "tsig_key"},
            )
        word = match.group(1).lower()
        values[word] = match.group(2) if match.group(2) is not None else match.group(3)
    algorithm = values.get("algorithm", "").lower()
    if not algorithm:
        raise BadRequest(f"TSIG key {key_name!r} has no algorithm", {"field": "tsig_key"})
    if algorithm not in TSIG_ALGORITHMS:
        supported = ", ".join(TSIG_ALGORITHMS)
        raise BadRequest(
            f"TSIG key {key_name!r}: unsupported algorithm {algorithm!r} (use one of {supported})",
            {"field": "tsig_key"},
        )
    secret = values.get("secret", "")
    if not secret:
        raise BadRequest(f"TSIG key {key_name!r} has no secret", {"field": "tsig_key"})
    try:
        decoded = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise BadRequest(
            f"TSIG key {key_name!r}: the secret is not valid base64", {"field": "tsig_key"}
        )
    return TSIGKey(name=key_name, algorithm=algorithm, secret=secret)


def format_tsig_key(key: TSIGKey) -> str:
    """The key in BIND's format (what ``tsig-keygen`` prints); also valid inside named.conf."""
    return f'key "{key.name}" {{\n\talgorithm {key.algorithm};\n\tsecret "{key.secret}";\n}};\n'


def _dnspython_key(key: TSIGKey) -> Any:
    import dns.tsig

    return dns.tsig.Key(key.name + ".", key.secret, TSIG_ALGORITHMS[key.algorithm] + ".")


# --- servers and host:port ------------------------------------------------------------------


# A DNS host name or an IPv4 address: dot-separated labels of letters, digits, '-' and '_'.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address.

    Raises ``BadRequest`` for an empty host or a port outside 1–65535.
    """
    raw = text.strip()
    port_text: str | None = None
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise BadRequest(f"{text!r}: missing ']' after an IPv6 address", {"field": "host"})
        host, rest = raw[1:end], raw[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise BadRequest(f"{text!r}: expected ':PORT' after ']'", {"field": "host"})
            port_text = rest[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    else:
        host = raw  # a name, an IPv4 address or a bare IPv6 address (several colons)
    if not host:
        raise BadRequest(f"{text!r}: no host given", {"field": "host"})
    if ":" in host or raw.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise BadRequest(f"{text!r}: not a host name or IP address", {"field": "host"}) from exc
    elif not _HOST_NAME.match(host):
        raise BadRequest(f"{text!r}: not a host name or IP address", {"field": "host"})
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise BadRequest(f"{text!r}: the port must be a number from 1 to 65535", {"field": "port"})
    return host, int(port_text)


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class DNSServer:
    """A DNS server given by IP address (and port, default 53)."""

    host: str
    port: int = DNS_PORT

    @classmethod
    def parse(cls, text: str) -> DNSServer:
        """Parse ``IP[:PORT]`` (IPv6 as ``[::1]:5353`` or a bare ``::1``)."""
        host, port = split_host_port(text, DNS_PORT)
        try:
            address = ipaddress.ip_address(host)
        except ValueError as exc:
            raise BadRequest(
                f"DNS server {text!r} must be an IP address, optionally with :PORT "
                "(IPv6 in brackets: [::1]:53)",
                {"field": "dns_server"},
            ) from exc
        return cls(str(address), port)

    def __str__(self) -> str:
        return join_host_port(self.host, self.port)


# --- queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SRVQueryResult:
    """What one SRV query gave. ``outcome`` is "answer" (then ``records`` is not empty),
    "nxdomain", "noanswer", "timeout" or "error: <why>"."""

    name: str
    server: str  # "system resolver" or "IP:PORT"
    outcome: str
    records: tuple[SRVRecord, ...] = ()


def _resolver(server: DNSServer | None, timeout: float) -> Any:
    import dns.resolver

    if server is None:
        resolver = dns.resolver.Resolver(configure=True)
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server.host]
        resolver.port = server.port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _server_label(server: DNSServer | None) -> str:
    return "system resolver" if server is None else str(server)


def query_srv(name: str, *, server: DNSServer | None, timeout: float) -> SRVQueryResult:
    """Query the SRV records of ``name`` (e.g. ``_volact._tcp.corp.example``) through ``server``,
    or through the system resolver when ``server`` is None. Never raises for a DNS failure."""
    import dns.exception
    import dns.name
    import dns.resolver

    label = _server_label(server)
    try:
        qname = dns.name.from_text(name.rstrip(".") + ".")
        answer = _resolver(server, timeout).resolve(qname, "SRV", search=False)
    except dns.resolver.NXDOMAIN:
        return SRVQueryResult(name, label, "nxdomain")
    except dns.resolver.NoAnswer:
        return SRVQueryResult(name, label, "noanswer")
    except dns.exception.Timeout:
        return SRVQueryResult(name, label, "timeout")
    except dns.resolver.NoNameservers as error:
        return SRVQueryResult(name, label, f"error: {_no_nameservers_reason(error)}")
    except dns.resolver.NoResolverConfiguration:
        return SRVQueryResult(name, label, "error: no DNS server is configured on this machine")
    except (dns.exception.DNSException, OSError, ValueError) as error:
        return SRVQueryResult(name, label, f"error: {error}")
    records = tuple(
        SRVRecord(
            priority=int(rdata.priority),
            weight=int(rdata.weight),
            port=int(rdata.port),
            target=rdata.target.to_text(omit_final_dot=True).lower(),
        )
        for rdata in answer
    )
    if not records:
        return SRVQueryResult(name, label, "noanswer")
    return SRVQueryResult(name, label, "answer", tuple(sorted(records)))


def _no_nameservers_reason(error: Any) -> str:
    """A short reason from dnspython's NoNameservers (which lists each server's answer)."""
    errors = error.kwargs.get("errors") or []
    reasons = []
    for entry in errors:
        # Each entry is (server, tcp, port, error-or-message, response); keep the message.
        reason = str(entry[3] if len(entry) > 3 else entry)
        reasons.append(f"the server answered {reason}" if reason.isupper() else reason)
    if not reasons:
        return "no DNS server answered"
    return "; ".join(dict.fromkeys(reasons))


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")


def resolve_address(target: str, *, server: DNSServer | None, timeout: float) -> list[str]:
    """The IP addresses of ``target`` (an SRV target or a host set by hand).

    With ``server`` set, A and AAAA records are asked of that server, so a client that was told
    ``set-dns-server`` finds its hosts through it too; otherwise the system resolver
    (``getaddrinfo``, which also reads /etc/hosts) is used. ``localhost`` is the loopback address
    without any lookup (RFC 6761), and an IP address is returned as it is.

    Raises ``HostUnreachable`` when nothing is found: for a caller trying hosts in turn this is
    the same as a host that does not answer.
    """
    name = target.strip().rstrip(".").lower()
    try:
        return [str(ipaddress.ip_address(name.strip("[]")))]
    except ValueError:
        pass
    if _is_localhost(name):
        return ["127.0.0.1", "::1"]
    if server is None:
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise HostUnreachable(
                f"cannot resolve host name {name!r}: {error}", {"host": name}
            ) from error
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
    import dns.exception
    import dns.name

    addresses: list[str] = []
    outcomes: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = _resolver(server, timeout).resolve(
                dns.name.from_text(name + "."), rdtype, search=False
            )
        except dns.exception.DNSException as error:
            outcomes.append(type(error).__name__)
            continue
        addresses.extend(rdata.address for rdata in answer)
    if not addresses:
        raise HostUnreachable(
            f"cannot resolve host name {name!r} through DNS server {server} "
            f"({', '.join(dict.fromkeys(outcomes)) or 'no address'})",
            {"host": name, "dns_server": str(server)},
        )
    return list(dict.fromkeys(addresses))


# --- the system's resolver configuration ----------------------------------------------------


def search_domains(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The resolver's search domains (resolv.conf ``search``, else ``domain``; as resolv.conf(5)
    says, the last of these lines wins). Empty when there is no configuration."""
    try:
        data = read_bytes(resolv_conf, what="resolver configuration", limit=MAX_SMALL_FILE_BYTES)
    except VolactError:
        return []
    text = data.decode("utf-8", errors="replace")
    found: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] in ("search", "domain"):
            found = words[1:] if words[0] == "search" else words[1:2]
    domains: list[str] = []
    for word in found:
        try:
            domain = normalize_name(word)
        except BadRequest:
            continue
        if domain not in domains:
            domains.append(domain)
    return domains


def fqdn_suffix(fqdn: str | None = None) -> str | None:
    """The machine's DNS domain: its fully qualified name minus the first label
    (``pc1.corp.example`` → ``corp.example``), or None when the name has no domain."""
    name = (socket.getfqdn() if fqdn is None else fqdn).strip().rstrip(".").lower()
    if "." not in name:
        return None
    try:
        suffix = normalize_name(name.split(".", 1)[1])
    except BadRequest:
        return None
    # Names like "pc1.localdomain" come from /etc/hosts defaults, not from a real DNS domain.
    if suffix in ("localdomain", "local", "localhost"):
        return None
    return suffix


# --- publishing -----------------------------------------------------------------------------


class DNSPublishError(Exception):
    """Publishing (or withdrawing) an SRV record failed. ``reason`` is a short stable word:
    "refused", "notauth", "badkey", "badsig", "badtime", "notzone", "servfail", "timeout",
    "unreachable" or "error"; the message is a sentence for the admin."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


def zone_lines(
    domains: Iterable[str],
    service: str = DEFAULT_SRV_SERVICE,
    *,
    target: str,
    port: int,
    priority: int = 0,
    weight: int = 0,
    ttl: int = DEFAULT_TTL,
) -> list[str]:
    """The zone-file lines an admin adds by hand, one per domain (``volact host dns-records``)::

    _volact._tcp.corp.example. 3600 IN SRV 0 0 7688 kms1.corp.example.
    """
    record = SRVRecord(priority, weight, port, normalize_name(target, what="target"))
    return [record.zone_line(srv_owner(service, domain), ttl) for domain in domains]


def _check_srv_fields(port: int, priority: int, weight: int, ttl: int) -> None:
    for label, value, high in (
        ("port", port, 65535),
        ("priority", priority, 65535),
        ("weight", weight, 65535),
        ("ttl", ttl, 2**31 - 1),
    ):
        low = 1 if label == "port" else 0
        if not low <= value <= high:
            raise BadRequest(f"SRV {label} must be from {low} to {high}", {"field": label})


def _own_records(
    owner: str, target: str, port: int, server: DNSServer, key: TSIGKey, timeout: float
) -> list[Any]:
    """The SRV rdatas at ``owner`` that name this host (same target and port), read from the
    primary server itself (over TCP, signed) so no cache stands between."""
    import dns.message
    import dns.rcode
    import dns.rdatatype

    query = dns.message.make_query(owner + ".", dns.rdatatype.SRV)
    query.use_tsig(_dnspython_key(key))
    response = _exchange(query, server, key, timeout, doing="read the current SRV records")
    if response.rcode() != dns.rcode.NOERROR:
        return []  # NXDOMAIN: nothing there yet; a refusal shows up again on the update.
    own: list[Any] = []
    for rrset in response.answer:
        if rrset.rdtype != dns.rdatatype.SRV:
            continue
        for rdata in rrset:
            if rdata.port == port and rdata.target.to_text(omit_final_dot=True).lower() == target:
                own.append(rdata)
    return own


def _exchange(message: Any, server: DNSServer, key: TSIGKey, timeout: float, *, doing: str) -> Any:
    """Send ``message`` over TCP; dnspython's exceptions become ``DNSPublishError``."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.tsig

    named = f"TSIG key {key.name!r} ({key.algorithm})"
    try:
        return dns.query.tcp(message, server.host, port=server.port, timeout=timeout)
    except dns.exception.Timeout as exc:
        raise DNSPublishError(
            "timeout", f"DNS server {server} did not answer within {timeout:g}s (to {doing})"
        ) from exc
    except dns.tsig.PeerBadKey as exc:
        raise DNSPublishError(
            "badkey",
            f"DNS server {server} does not know {named} (BADKEY): the key's name and algorithm "
            "must match a key in the server's named.conf",
        ) from exc
    except dns.tsig.PeerBadSignature as exc:
        raise DNSPublishError(
            "badsig",
            f"DNS server {server} rejected the signature of {named} (BADSIG): the key's secret "
            "differs from the server's copy",
        ) from exc
    except dns.tsig.PeerBadTime as exc:
        raise DNSPublishError(
            "badtime",
            f"DNS server {server} rejected the time in the signature of {named} (BADTIME): the "
            "clocks of this machine and the DNS server differ by more than 5 minutes",
        ) from exc
    except (dns.tsig.PeerError, dns.message.UnknownTSIGKey, dns.tsig.BadSignature) as error:
        raise DNSPublishError(
            "badsig", f"DNS server {server}: TSIG failure with {named} ({type(error).__name__})"
        ) from error
    except OSError as error:
        raise DNSPublishError(
            "unreachable", f"cannot reach DNS server {server}: {error.strerror or error}"
        ) from error
    except dns.exception.DNSException as error:
        raise DNSPublishError("error", f"DNS server {server}: {error} (to {doing})") from error


def _send_update(update: Any, zone: str, server: DNSServer, key: TSIGKey, timeout: float) -> None:
    import dns.rcode

    response = _exchange(update, server, key, timeout, doing=f"update zone {zone}")
    rcode = response.rcode()
    if rcode == dns.rcode.NOERROR:
        return
    name = dns.rcode.to_text(rcode)
    hints = {
        dns.rcode.REFUSED: (
            "refused",
            f"the server refused the update: check that zone {zone}'s update-policy (or "
            f"allow-update) grants key {key.name!r} the SRV name",
        ),
        dns.rcode.NOTAUTH: (
            "notauth",
            f"the server is not authoritative for zone {zone}, or rejected TSIG key {key.name!r}",
        ),
        dns.rcode.NOTZONE: ("notzone", f"the name is outside zone {zone}"),
        dns.rcode.SERVFAIL: ("servfail", f"the server failed to apply the update to zone {zone}"),
    }
    reason, hint = hints.get(rcode, ("error", f"the update of zone {zone} failed"))
    raise DNSPublishError(reason, f"DNS server {server} answered {name}: {hint}")


def publish_srv(
    domain: str,
    *,
    service: str = DEFAULT_SRV_SERVICE,
    target: str,
    port: int,
    priority: int = 0,
    weight: int = 0,
    ttl: int = DEFAULT_TTL,
    server: DNSServer,
    key: TSIGKey,
    timeout: float = 5.0,
) -> None:
    """Publish this host's SRV record ``<service>.<domain>`` by an RFC 2136 update signed with
    ``key``, sent to ``server`` (the zone's primary). ``domain`` is the zone.

    Only this host's own record is replaced: records with the same target and port but another
    priority or weight are deleted, then the record is added (adding an identical record is a
    no-op, so republishing never duplicates). Other hosts' records are left alone.
    Raises ``DNSPublishError`` on failure and ``BadRequest`` for bad arguments.
    """
    import dns.update

    _check_srv_fields(port, priority, weight, ttl)
    zone = normalize_name(domain)
    owner = srv_owner(service, zone)
    target_name = normalize_name(target, what="target")
    update = dns.update.UpdateMessage(zone + ".", keyring=_dnspython_key(key))
    for rdata in _own_records(owner, target_name, port, server, key, timeout):
        if (rdata.priority, rdata.weight) != (priority, weight):
            update.delete(owner + ".", rdata)
    update.add(owner + ".", ttl, "SRV", f"{priority} {weight} {port} {target_name}.")
    _send_update(update, zone, server, key, timeout)


def withdraw_srv(
    domain: str,
    *,
    service: str = DEFAULT_SRV_SERVICE,
    target: str,
    port: int,
    server: DNSServer,
    key: TSIGKey,
    timeout: float = 5.0,
) -> None:
    """Remove this host's SRV record(s) (same target and port) from ``<service>.<domain>``;
    other hosts' records stay. Raises ``DNSPublishError`` on failure."""
    import dns.update

    zone = normalize_name(domain)
    owner = srv_owner(service, zone)
    own = _own_records(owner, normalize_name(target, what="target"), port, server, key, timeout)
    if not own:
        return
    update = dns.update.UpdateMessage(zone + ".", keyring=_dnspython_key(key))
    for rdata in own:
        update.delete(owner + ".", rdata)
    _send_update(update, zone, server, key, timeout)
