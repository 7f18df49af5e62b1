"""Activation and renewal attempts for one product: ask, verify, record (SPEC §5, §6, §8).

An attempt builds SPEC §6's activation request from the product's record, then gets a verified
:class:`~volact.core.tickets.Activation`:

* for a GVLK, from a host: the candidates come from discovery (manual host, cached host, DNS
  SRV; :mod:`volact.client.discovery`), each is asked in turn through the injected
  :class:`~volact.net.transport.Transport`, and its answer is verified against the descriptor
  and this request's nonce (a host whose answer does not verify is skipped like one that does
  not answer);
* for a MAK, from the vendor service (:mod:`volact.client.mak`, through the same transport), or
  offline from a response file (:func:`offline_request`, :func:`install_offline_response`).

It then records the outcome with the client machine (:mod:`volact.core.client_machine`): a
success as the new activation, a failure with its code and the retry interval the host sent.
A failure comes back as an :class:`Attempt` holding the typed error, whose message says when
the client retries. Storage errors are raised.

These functions work on a :class:`LicenseParts` (what they need of a ``License``), so this
module does not import :mod:`volact.client.license`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from volact.client import identity, next_steps, revocations
from volact.client.state import PendingRequest, ProductState, StateDir
from volact.client.status import LicenseStatus
from volact.clock import Clock
from volact.core import client_machine as machine
from volact.core import keys
from volact.core.descriptor import ProductDescriptor
from volact.core.durations import humanize
from volact.core.errors import (
    BadRequest,
    CountInsufficient,
    HostUnreachable,
    InvalidHostCertificate,
    InvalidTicket,
    StorageError,
    VolactError,
    error_from_code,
)
from volact.core.protocol import ACTIVATE_PATH, ActivationRequest
from volact.core.tickets import Activation, verify_activation

T = TypeVar("T")

if TYPE_CHECKING:
    from volact.client.discovery import Candidate, Trace
    from volact.net.dns import DNSServer, SRVQueryResult
    from volact.net.transport import Transport

__all__ = [
    "Attempt",
    "DNSLookups",
    "LicenseParts",
    "attempt",
    "install_offline_response",
    "new_request",
    "offline_request",
]


class DNSLookups(Protocol):
    """The DNS lookups discovery needs (``volact.net.dns`` and ``discovery.StaticDNS``)."""

    def query_srv(self, name: str, *, server: Any, timeout: float) -> SRVQueryResult: ...

    def search_domains(self) -> list[str]: ...

    def fqdn_suffix(self) -> str | None: ...


@dataclass(frozen=True)
class Attempt:
    """One activation or renewal attempt and how it ended."""

    product: str
    at: int  # Unix seconds, the client's clock
    error: VolactError | None  # None: activated
    host: str | None  # the host (or vendor URL) that answered, if any
    status: LicenseStatus  # the status right after the attempt
    trace: Trace | None = None  # what discovery did (GVLK only)

    @property
    def ok(self) -> bool:
        return self.error is None


class LicenseParts(Protocol):
    """What an attempt needs of a ``License``: its parts and its state-file helpers.

    The underscored members are the SDK's own (``License`` keeps them private to its users).
    """

    @property
    def product(self) -> str: ...
    @property
    def descriptor(self) -> ProductDescriptor: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def state(self) -> StateDir: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def random(self) -> identity.RandomSource: ...
    @property
    def _lock(self) -> AbstractContextManager[Any]: ...
    @property
    def _transport(self) -> Transport | None: ...
    @property
    def _dns(self) -> DNSLookups | None: ...
    @property
    def _dns_timeout(self) -> float: ...

    def status(self) -> LicenseStatus: ...

    def _require(self) -> ProductState: ...

    def _update(
        self,
        change: Callable[[ProductState], ProductState],
        now: int,
        *,
        trust_clock: bool = True,
    ) -> ProductState: ...

    def _recloned(self, current: ProductState, now: int) -> ProductState: ...


# Refusals that a retry alone will not change; their messages do not promise a retry.
_FINAL_CODES = frozenset(
    {"key_exhausted", "client_blocked", "invalid_key", "product_unknown", "rearm_limit"}
)


def new_request(lic: LicenseParts, record: machine.ClientRecord, now: int) -> ActivationRequest:
    """SPEC §6's activation request for ``record`` at ``now``, with a fresh nonce."""
    return ActivationRequest(
        product=lic.product,
        key=record.key,
        cmid=record.cmid,
        fingerprint=record.fingerprint,
        machine=identity.machine_name(),
        client_time=now,
        nonce=identity.new_nonce(lic.random),
        state=machine.request_state(record, now),
    )


def _current(lic: LicenseParts, now: int) -> ProductState:
    """The installed product's state, with a new CMID written first after a clone."""
    stored = lic._require()
    if stored.record.fingerprint != lic.fingerprint:
        stored = lic._update(lambda current: lic._recloned(current, now), now)
    return stored


def attempt(lic: LicenseParts, *, vendor_url: str | None = None, eager: bool = False) -> Attempt:
    """One activation attempt, recorded; ``eager`` queries every DNS name first (diagnosis)."""
    with lic._lock:
        now = lic.clock()
        stored = _current(lic, now)
        request = new_request(lic, stored.record, now)
        trace: Trace | None = None
        host: str | None = None
        try:
            if stored.record.channel is keys.Channel.MAK:
                host = _vendor_url(lic, vendor_url)
                activation = _activate_mak(lic, host, request)
            else:
                candidates, trace, server = _discover(lic, stored, eager)
                activation = _try_hosts(lic, candidates, trace, server, request)
                assert trace.reached is not None
                host = trace.reached.address
        except StorageError:
            raise
        except VolactError as error:
            if trace is not None and trace.reached is not None:
                host = trace.reached.address
            return _record_failure(lic, error, host, trace, lic.clock())
        done = lic.clock()
        reached = host
        discovered = trace is not None

        def succeeded(current: ProductState) -> ProductState:
            caching = current.settings.over(lic.state.read_settings()).host_caching
            return replace(
                current,
                record=machine.record_activation(current.record, activation, done),
                activated_by=reached,
                last_host=reached,
                cached_host=reached if caching and discovered else current.cached_host,
                pending_offline=None,
            )

        try:
            # Rule 7: the success re-anchored the trusted time; observing `done` would undo it.
            lic._update(succeeded, done, trust_clock=False)
        except InvalidTicket as error:  # the record changed meanwhile (a rearm, a clone)
            return _record_failure(lic, error, host, trace, done)
        return Attempt(lic.product, done, None, host, lic.status(), trace)


def _record_failure(
    lic: LicenseParts, error: VolactError, host: str | None, trace: Trace | None, now: int
) -> Attempt:
    retry = error.details.get("retry_interval")
    hinted = retry if isinstance(retry, int) and not isinstance(retry, bool) else None
    caching_host = trace.reached.address if trace and trace.reached else None

    def failed(current: ProductState) -> ProductState:
        caching = current.settings.over(lic.state.read_settings()).host_caching
        return replace(
            current,
            record=machine.record_failure(current.record, error.code, now, hinted),
            last_host=host,
            cached_host=caching_host if caching and caching_host else current.cached_host,
        )

    updated = lic._update(failed, now, trust_clock=error.code != "time_skew")
    error = _explained(error, updated.record.retry_interval, host)
    return Attempt(lic.product, now, error, host, lic.status(), trace)


def _explained(error: VolactError, retry_interval: int, host: str | None) -> VolactError:
    """The error with a message that says what happens next (the retry)."""
    details = dict(error.details)
    details["retry_interval"] = retry_interval
    if host is not None:
        details.setdefault("host", host)
    later = f"will retry in {humanize(retry_interval)}"
    if isinstance(error, CountInsufficient) and {"count", "threshold"} <= details.keys():
        message = f"{details['count']} of {details['threshold']} clients so far; {later}"
    elif error.code in _FINAL_CODES:
        # Retrying cannot help until someone acts (a new key, an unblock): say so plainly.
        message = error.message.rstrip(".")
    else:
        message = f"{error.message.rstrip('.')}; {later}"
    return error_from_code(error.code, message, details, next_step=error.next_step)


# --- a MAK at the vendor service --------------------------------------------------------------


def _vendor_url(lic: LicenseParts, given: str | None) -> str:
    url = given or lic.descriptor.activation_url
    if not url:
        raise BadRequest(
            "this product's descriptor names no online activation service for MAKs",
            next_step=next_steps.VENDOR_URL_OR_OFFLINE,
        )
    return url


def _activate_mak(lic: LicenseParts, url: str, request: ActivationRequest) -> Activation:
    from volact.client.mak import activate_mak_online

    # The injected transport, else one with the vendor service's limits (never the hosts').
    return activate_mak_online(
        url, request, lic.descriptor, transport=lic._transport, now=lic.clock()
    )


# --- a GVLK at a host ---------------------------------------------------------------------------


def _discover(
    lic: LicenseParts, stored: ProductState, eager: bool
) -> tuple[Iterator[Candidate], Trace, DNSServer | None]:
    """The candidate hosts (lazily, or all at once for ``diagnose``), their trace, and the
    DNS server set by hand (None: the system resolver)."""
    from volact.client import discovery

    effective = stored.settings.over(lic.state.read_settings())
    settings = discovery.DiscoverySettings(
        manual_host=effective.manual_host,
        cached_host=stored.cached_host,
        host_caching=effective.host_caching,
        domains=effective.domains,
        dns_server=effective.dns_server,
        srv_service=lic.descriptor.srv_service,
    )
    lookups = _lookups(lic)
    found, trace = discovery.iter_candidates(
        settings,
        query_srv=lookups.query_srv,
        search_domains=lookups.search_domains,
        fqdn_suffix=lookups.fqdn_suffix,
        randint=lic.random.randint,
        timeout=lic._dns_timeout,
    )
    return (iter(list(found)) if eager else found), trace, settings.server


def _lookups(lic: LicenseParts) -> Any:
    if lic._dns is not None:
        return lic._dns
    from volact.net import dns

    return dns


def _try_hosts(
    lic: LicenseParts,
    candidates: Iterator[Candidate],
    trace: Trace,
    server: DNSServer | None,
    request: ActivationRequest,
) -> Activation:
    from volact.client import discovery

    body = request.to_json()

    def ask(candidate: Candidate) -> Activation:
        return _ask_host(lic, candidate, body, request, server)

    return discovery.try_candidates(
        candidates,
        ask,
        trace,
        try_next_on=(*discovery.TRY_NEXT_ON, InvalidHostCertificate, InvalidTicket),
    )


def ask_each_address(
    lic: LicenseParts,
    candidate: Candidate,
    server: DNSServer | None,
    path: str,
    ask: Callable[[str], T],
) -> T:
    """``ask(url)`` of ``path`` at each address of ``candidate`` until one is reached; only an
    unreachable address moves on to the next (the activation and the read-only diagnosis share
    this rule)."""
    from volact.net.dns import join_host_port

    hosts = [candidate.host]
    resolve = getattr(_lookups(lic), "resolve_address", None)
    if server is not None and resolve is not None:
        # A DNS server set by hand also resolves the SRV targets (else http.client would ask the
        # system resolver, which may not know the names).
        hosts = resolve(candidate.host, server=server, timeout=lic._dns_timeout)
    last: HostUnreachable | None = None
    for address in hosts:
        try:
            return ask(f"http://{join_host_port(address, candidate.port)}{path}")
        except HostUnreachable as error:
            last = error
    assert last is not None
    raise last


def _ask_host(
    lic: LicenseParts,
    candidate: Candidate,
    body: dict[str, Any],
    request: ActivationRequest,
    server: DNSServer | None,
) -> Activation:
    answer = ask_each_address(
        lic, candidate, server, ACTIVATE_PATH, lambda url: _post(lic, url, body)
    )
    ticket = answer.get("ticket")
    certificate = answer.get("host_certificate")
    if not isinstance(ticket, str) or not isinstance(certificate, (str, type(None))):
        raise InvalidTicket(f"{candidate.address} answered without a ticket")
    try:
        verified = verify_activation(
            lic.descriptor,
            ticket,
            certificate,
            cmid=request.cmid,
            fingerprint=request.fingerprint,
            nonce=request.nonce,
            now=lic.clock(),
        )
        # The list the host sent is kept if newer; a revoked host is refused (issue 20).
        revocations.check(lic.state, lic.descriptor, verified, answer.get("revocations"))
        return verified
    except (InvalidHostCertificate, InvalidTicket) as error:
        raise type(error)(
            f"{candidate.address}: {error.message}", error.details, next_step=error.next_step
        ) from error


def _post(lic: LicenseParts, url: str, body: dict[str, Any]) -> dict[str, Any]:
    transport = lic._transport
    if transport is None:
        from volact.net.transport import HTTPTransport

        transport = HTTPTransport()  # holds no connections: one per attempt costs nothing
    return transport.post_json(url, body)


# --- a MAK offline --------------------------------------------------------------------------


def offline_request(lic: LicenseParts) -> str:
    """An offline MAK activation request file for this machine (its text); see
    ``License.offline_request``. The request is remembered as pending (its nonce)."""
    from volact.client.mak import mak_request_file

    now = lic.clock()
    with lic._lock:
        stored = lic._require()
        if stored.record.channel is not keys.Channel.MAK:
            raise BadRequest(
                "offline activation is for MAKs; this product has a GVLK installed",
                next_step=next_steps.INSTALL_MAK,
            )
        if stored.record.fingerprint != lic.fingerprint:
            stored = lic._update(lambda current: lic._recloned(current, now), now)
        request = new_request(lic, stored.record, now)
        pending = PendingRequest(request.nonce, request.cmid, request.fingerprint, now)
        text = mak_request_file(request)
        lic._update(lambda current: replace(current, pending_offline=pending), now)
    return text


def install_offline_response(lic: LicenseParts, source: str | bytes) -> LicenseStatus:
    """Install the vendor's answer to the pending offline request; see
    ``License.install_offline_response``."""
    from volact.client.mak import read_mak_response

    now = lic.clock()
    with lic._lock:
        stored = lic._require()
        pending = stored.pending_offline
        if pending is None or pending.cmid != stored.record.cmid:
            raise BadRequest(
                "no offline request is pending on this machine",
                next_step=next_steps.OFFLINE_REQUEST_FIRST,
            )
        activation = read_mak_response(
            source,
            lic.descriptor,
            cmid=pending.cmid,
            fingerprint=pending.fingerprint,
            nonce=pending.nonce,
            now=now,
        )
        lic._update(
            lambda current: replace(
                current,
                record=machine.record_activation(current.record, activation, now),
                activated_by="offline",
                last_host="offline",
                pending_offline=None,
            ),
            now,
            trust_clock=False,  # rule 7, as after an online success
        )
    return lic.status()
