"""Finding an activation host (SPEC §5).

The rules, in the order they apply:

1. A host set by hand (``volact client set-host``) is the only candidate: DNS is off.
2. Otherwise the cached host (the last host that answered) comes first, if host caching is on.
3. Then the SRV records ``<service>.<domain>`` for each domain of one list: the configured
   domains (``set-domain``), else the resolver's search domains, else the machine's FQDN suffix.
   Each name's records are tried in RFC 2782 order (``order_srv``); names in list order.
4. A candidate that does not answer (the caller's attempt raises ``HostUnreachable``) is dropped
   and the next one is tried. A host that answers with ``product_not_hosted`` or
   ``host_not_activated`` cannot serve this client but another host may, so the next one is tried
   too. Any other error is the host's answer (for example ``count_insufficient``): the search
   stops and the error is raised.
5. One ``host:port`` is tried at most once, and DNS is queried only when the hosts before it
   failed, so a working cached host costs no DNS query.

Nothing here imports dnspython: the lookups (``query_srv``, ``search_domains``,
``fqdn_suffix``) are injected, with ``volact.net.dns``'s as defaults, so the SDK's unit tests can
pass ``StaticDNS`` (below) and the DNS integration tests pass a real BIND server's address.
Everything that happened is written into a ``Trace`` that ``volact client diagnose`` prints.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

from volact.client import next_steps
from volact.core.descriptor import DEFAULT_SRV_SERVICE
from volact.core.errors import (
    BadRequest,
    HostNotActivated,
    HostUnreachable,
    NoHostFound,
    ProductNotHosted,
    VolactError,
)
from volact.core.srv import RandInt, SRVRecord, order_srv
from volact.net import dns

DEFAULT_PORT = 7688
DEFAULT_DNS_TIMEOUT = 3.0

# Answers that mean "not this host, but maybe another": the search goes on.
TRY_NEXT_ON: tuple[type[VolactError], ...] = (ProductNotHosted, HostNotActivated)

T = TypeVar("T")


class QuerySRV(Protocol):
    def __call__(
        self, name: str, *, server: dns.DNSServer | None, timeout: float
    ) -> dns.SRVQueryResult: ...


@dataclass(frozen=True)
class DiscoverySettings:
    """The client's discovery configuration, as the state file keeps it.

    ``manual_host`` and ``cached_host`` are ``host[:port]`` (IPv6 in brackets; default port
    7688); ``dns_server`` is ``IP[:PORT]`` or None for the system resolver; ``srv_service`` comes
    from the product descriptor.
    """

    manual_host: str | None = None
    cached_host: str | None = None
    host_caching: bool = True
    domains: Sequence[str] = ()
    dns_server: str | None = None
    srv_service: str = DEFAULT_SRV_SERVICE

    @property
    def server(self) -> dns.DNSServer | None:
        """The DNS server to ask, or None for the system resolver (``BadRequest`` if malformed)."""
        return None if self.dns_server is None else dns.DNSServer.parse(self.dns_server)


class Candidate(NamedTuple):
    """A host to try. ``source`` is "manual", "cached" or "dns:<SRV name>"."""

    host: str
    port: int
    source: str

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 in brackets), the form ``cached_host`` keeps."""
        return dns.join_host_port(self.host, self.port)


@dataclass(frozen=True)
class TraceQuery:
    """One SRV query: the name, the server asked, the outcome and what came back."""

    name: str
    server: str
    outcome: str  # "answer", "nxdomain", "noanswer", "timeout" or "error: …"
    records: tuple[SRVRecord, ...] = ()


@dataclass(frozen=True)
class TraceAttempt:
    """One host tried: ``result`` is "ok", "unreachable" or the code the host answered."""

    candidate: Candidate
    result: str
    message: str = ""


@dataclass
class Trace:
    """What discovery looked at, asked and tried, in order (for ``volact client diagnose``)."""

    manual_host: str | None
    cached_host: str | None
    host_caching: bool
    dns_server: str
    service: str
    domains: list[str] = field(default_factory=list)
    domains_source: str = ""  # "set-domain", "resolver search list", "FQDN suffix" or "none"
    queries: list[TraceQuery] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    attempts: list[TraceAttempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The host that answered (successfully, or with an answer that ended the search): the one to
    # keep as the cached host.
    reached: Candidate | None = None

    @property
    def names_queried(self) -> list[str]:
        return [query.name for query in self.queries]

    def lines(self) -> list[str]:
        """The trace as text lines, one fact per line."""
        out = [
            f"manual host: {self.manual_host or 'none'}"
            + (" (DNS discovery is off)" if self.manual_host else ""),
            f"host caching: {'on' if self.host_caching else 'off'}; cached host: "
            f"{self.cached_host or 'none'}",
            f"DNS server: {self.dns_server}",
        ]
        if self.domains_source:
            shown = ", ".join(self.domains) or "none"
            out.append(f"domains ({self.domains_source}): {shown}")
        for query in self.queries:
            if query.outcome == "answer":
                count = len(query.records)
                out.append(f"SRV {query.name}: {count} record{'s' if count != 1 else ''}")
                out.extend(
                    f"    priority {r.priority} weight {r.weight} port {r.port} target {r.target}"
                    for r in query.records
                )
            else:
                out.append(f"SRV {query.name}: {_outcome_text(query.outcome)}")
        out.extend(f"note: {note}" for note in self.notes)
        if self.candidates:
            shown = ", ".join(f"{c.address} ({c.source})" for c in self.candidates)
            out.append(f"candidates in order: {shown}")
        for attempt in self.attempts:
            text = f"tried {attempt.candidate.address}: {attempt.result}"
            out.append(text + (f" ({attempt.message})" if attempt.message else ""))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-able data (for ``diagnose --json``)."""
        return {
            "manual_host": self.manual_host,
            "cached_host": self.cached_host,
            "host_caching": self.host_caching,
            "dns_server": self.dns_server,
            "service": self.service,
            "domains": list(self.domains),
            "domains_source": self.domains_source,
            "queries": [
                {
                    "name": q.name,
                    "server": q.server,
                    "outcome": q.outcome,
                    "records": [
                        {
                            "priority": r.priority,
                            "weight": r.weight,
                            "port": r.port,
                            "target": r.target,
                        }
                        for r in q.records
                    ],
                }
                for q in self.queries
            ],
            "candidates": [_candidate_dict(c) for c in self.candidates],
            "attempts": [
                {**_candidate_dict(a.candidate), "result": a.result, "message": a.message}
                for a in self.attempts
            ],
            "notes": list(self.notes),
            "reached": None if self.reached is None else _candidate_dict(self.reached),
        }


def _candidate_dict(candidate: Candidate) -> dict[str, Any]:
    return {"host": candidate.host, "port": candidate.port, "source": candidate.source}


def _outcome_text(outcome: str) -> str:
    return {
        "nxdomain": "NXDOMAIN (no such name)",
        "noanswer": "no SRV records (the name exists)",
        "timeout": "timed out (no answer from the DNS server)",
    }.get(outcome, outcome)


def parse_host(text: str, source: str) -> Candidate:
    """A ``host[:port]`` string as a candidate (default port 7688)."""
    host, port = dns.split_host_port(text, DEFAULT_PORT)
    return Candidate(host.lower(), port, source)


def iter_candidates(
    settings: DiscoverySettings,
    *,
    query_srv: QuerySRV = dns.query_srv,
    search_domains: Callable[[], list[str]] = dns.search_domains,
    fqdn_suffix: Callable[[], str | None] = dns.fqdn_suffix,
    randint: RandInt | None = None,
    timeout: float = DEFAULT_DNS_TIMEOUT,
) -> tuple[Iterator[Candidate], Trace]:
    """The candidates in the order of the rules above, as a *lazy* iterator (DNS is asked only
    when the iteration gets there), and the trace it fills in as it goes.

    ``randint`` is the random source for RFC 2782 weights (default: a fresh
    ``random.SystemRandom``). Raises ``BadRequest`` at once for malformed settings.
    """
    server = settings.server
    manual = None if settings.manual_host is None else parse_host(settings.manual_host, "manual")
    domains = [dns.normalize_name(domain) for domain in settings.domains]
    trace = Trace(
        manual_host=settings.manual_host,
        cached_host=settings.cached_host,
        host_caching=settings.host_caching,
        dns_server=str(server) if server is not None else "system resolver",
        service=settings.srv_service,
    )
    pick = randint if randint is not None else random.SystemRandom().randint

    def generate() -> Iterator[Candidate]:
        if manual is not None:
            trace.candidates.append(manual)
            yield manual
            return
        seen: set[tuple[str, int]] = set()
        if settings.host_caching and settings.cached_host:
            try:
                cached = parse_host(settings.cached_host, "cached")
            except BadRequest as error:
                trace.notes.append(f"ignored the cached host: {error.message}")
            else:
                seen.add((cached.host, cached.port))
                trace.candidates.append(cached)
                yield cached
        names = _domain_list(domains, search_domains, fqdn_suffix, trace)
        for domain in names:
            name = f"{settings.srv_service.strip('.')}.{domain}"
            result = query_srv(name, server=server, timeout=timeout)
            trace.queries.append(TraceQuery(name, result.server, result.outcome, result.records))
            for record in order_srv(result.records, pick):
                if (record.target, record.port) in seen:
                    continue
                seen.add((record.target, record.port))
                candidate = Candidate(record.target, record.port, f"dns:{name}")
                trace.candidates.append(candidate)
                yield candidate

    return generate(), trace


def _domain_list(
    configured: list[str],
    search_domains: Callable[[], list[str]],
    fqdn_suffix: Callable[[], str | None],
    trace: Trace,
) -> list[str]:
    if configured:
        trace.domains, trace.domains_source = list(configured), "set-domain"
    elif found := search_domains():
        trace.domains, trace.domains_source = list(found), "resolver search list"
    elif (suffix := fqdn_suffix()) is not None:
        trace.domains, trace.domains_source = [suffix], "FQDN suffix"
    else:
        trace.domains, trace.domains_source = [], "none"
        trace.notes.append("no DNS domain is known: set one with `volact client set-domain DOMAIN`")
    return trace.domains


def candidates(
    settings: DiscoverySettings,
    *,
    query_srv: QuerySRV = dns.query_srv,
    search_domains: Callable[[], list[str]] = dns.search_domains,
    fqdn_suffix: Callable[[], str | None] = dns.fqdn_suffix,
    randint: RandInt | None = None,
    timeout: float = DEFAULT_DNS_TIMEOUT,
) -> tuple[list[Candidate], Trace]:
    """Every candidate, in order, with all DNS queries made (what ``diagnose`` shows)."""
    found, trace = iter_candidates(
        settings,
        query_srv=query_srv,
        search_domains=search_domains,
        fqdn_suffix=fqdn_suffix,
        randint=randint,
        timeout=timeout,
    )
    return list(found), trace


def try_candidates(
    candidates: Iterable[Candidate],
    attempt: Callable[[Candidate], T],
    trace: Trace,
    *,
    try_next_on: tuple[type[VolactError], ...] = TRY_NEXT_ON,
) -> T:
    """Call ``attempt`` on each candidate in turn and return the first result.

    ``attempt`` raises ``HostUnreachable`` when it cannot talk to the host (refused, timed out,
    name not found): the next candidate is tried. Errors in ``try_next_on`` also move on. Any
    other ``VolactError`` is the host's answer and is raised at once. When nothing is left:
    ``NoHostFound`` (naming the names queried) if there was no candidate at all; the first
    "try next" answer if a host gave one; else ``HostUnreachable`` naming the hosts tried.
    """
    deferred: VolactError | None = None
    for candidate in candidates:
        try:
            result = attempt(candidate)
        except HostUnreachable as error:
            trace.attempts.append(TraceAttempt(candidate, "unreachable", error.message))
            continue
        except try_next_on as error:
            trace.attempts.append(TraceAttempt(candidate, error.code, error.message))
            deferred = deferred or error
            continue
        except VolactError as error:
            trace.attempts.append(TraceAttempt(candidate, error.code, error.message))
            trace.reached = candidate
            raise
        trace.attempts.append(TraceAttempt(candidate, "ok"))
        trace.reached = candidate
        return result
    if not trace.attempts:
        raise no_host_found(trace)
    if deferred is not None:
        raise deferred
    tried = [a.candidate.address for a in trace.attempts]
    raise HostUnreachable(
        f"no activation host answered (tried {', '.join(tried)})",
        {"tried": tried, "errors": {a.candidate.address: a.message for a in trace.attempts}},
    )


def no_host_found(trace: Trace) -> NoHostFound:
    """The ``NoHostFound`` error for a trace that produced no candidate."""
    names = trace.names_queried
    if names:
        outcomes = ", ".join(f"{q.name} ({_outcome_text(q.outcome)})" for q in trace.queries)
        message = f"no activation host found: no usable SRV records under {outcomes}"
    else:
        message = (
            "no activation host found: no host is set, none is cached and no DNS domain is known"
        )
        return NoHostFound(
            message,
            {"queried": names, "domains": list(trace.domains)},
            next_step=next_steps.SET_HOST_OR_DOMAIN,
        )
    return NoHostFound(message, {"queried": names, "domains": list(trace.domains)})


@dataclass
class StaticDNS:
    """A fake DNS for unit tests and the simulator: SRV answers from a table, no network.

    ``records`` maps an SRV name to its records; ``outcomes`` maps a name to a failure outcome
    ("nxdomain", "timeout", …). Unknown names are NXDOMAIN. Pass the bound methods to
    ``iter_candidates``: ``query_srv=fake.query_srv, search_domains=fake.search_domains,
    fqdn_suffix=fake.fqdn_suffix``.
    """

    records: Mapping[str, Sequence[SRVRecord]] = field(default_factory=dict)
    outcomes: Mapping[str, str] = field(default_factory=dict)
    search: list[str] = field(default_factory=list)
    suffix: str | None = None
    asked: list[str] = field(default_factory=list)

    def query_srv(
        self, name: str, *, server: dns.DNSServer | None, timeout: float
    ) -> dns.SRVQueryResult:
        self.asked.append(name)
        label = "system resolver" if server is None else str(server)
        if name in self.outcomes:
            return dns.SRVQueryResult(name, label, self.outcomes[name])
        found = tuple(sorted(self.records.get(name, ())))
        if not found:
            return dns.SRVQueryResult(name, label, "nxdomain")
        return dns.SRVQueryResult(name, label, "answer", found)

    def search_domains(self) -> list[str]:
        return list(self.search)

    def fqdn_suffix(self) -> str | None:
        return self.suffix
