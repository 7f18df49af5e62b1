"""The activation host's service: the pure core wired to a store, a signer and a clock.

One request (``POST /v1/activate``) goes:

1. :func:`~volact.core.protocol.parse_activation_request` — a malformed body raises
   ``bad_request`` or ``unsupported_version`` and touches nothing.
2. :func:`~volact.core.host_machine.route` — store-free checks (certificate, key, product, group,
   clock skew). A refusal is recorded (one event, the statistics) with
   :meth:`~volact.store.base.Store.record` and raised as its error code.
3. :meth:`~volact.store.base.Store.activate` — read, :func:`~volact.core.host_machine.decide`,
   write, commit, in one transaction.
4. The ticket is signed by the store's ``seal`` hook (the SQLite store signs a whole batch's
   tickets at once, while the batch is being committed) and answered only once the commit has
   returned; a refusal (below the threshold, blocked) is raised with details the client can act
   on.

The service knows no HTTP: the app (:mod:`volact.host.app`) maps error codes to statuses.

At construction the service checks its certificate: signed by one of the vendor root keys in
``host.json``, from that vendor, for this host's own public key and host id. If any check fails,
the host still serves, answers ``host_not_activated``, and says why in its log and in
``volact host status`` (:attr:`HostService.certificate_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from types import TracebackType
from typing import Any, Protocol, TypeVar

from volact import __version__, crypto
from volact.core.errors import (
    BadRequest,
    HostNotActivated,
    InternalError,
    InvalidHostCertificate,
    StorageError,
    VolactError,
    error_from_code,
)
from volact.core.host_machine import (
    Decision,
    Event,
    GroupView,
    HostContext,
    Outcome,
    decide,
    refused,
    route,
)
from volact.core.policy import CLOCK_SKEW_TOLERANCE, COUNT_WINDOW, GroupPolicy
from volact.core.protocol import ActivationRequest, parse_activation_request
from volact.core.revocation import RevocationList
from volact.core.revocation import check_certificate as check_revocation
from volact.core.tickets import TICKET_KIND, HostCertificate, verify_certificate
from volact.host import revocations as host_revocations
from volact.host.identity import HostFiles, HostSettings
from volact.host.upkeep import VendorUpkeep
from volact.store.base import (
    EVENT_RETENTION_ROWS,
    EVENT_RETENTION_SECONDS,
    Store,
    count_limit_for,
)

log = logging.getLogger("volact.host")
# The bytes of the host's answers: the same as Starlette's JSONResponse.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
T = TypeVar("T")

# Until a host is certified it knows no policy; clients retry at the default retry interval.
DEFAULT_RETRY_INTERVAL = GroupPolicy().retry_interval
MAINTENANCE_INTERVAL = 3600.0
# How often a running host looks for a certificate installed by `volact host activate`.
CERTIFICATE_CHECK_INTERVAL = 10.0


@dataclass(frozen=True)
class CertificateStatus:
    """The host's certificate after the start-up checks; ``reason`` says why it is unusable."""

    certificate: HostCertificate | None
    token: str | None
    reason: str = ""

    def activated_at(self, now: int) -> bool:
        return self.certificate is not None and self.certificate.valid_at(now)

    def explain(self, now: int) -> str:
        """Why the host cannot activate at ``now`` ("" when it can)."""
        if self.certificate is None:
            return self.reason
        if now < self.certificate.not_before:
            return "the host certificate is not valid yet"
        if now > self.certificate.not_after:
            return "the host certificate has expired; run `volact host activate` again"
        return ""


def check_certificate(
    settings: HostSettings, host_key: crypto.VerifyKey, token: str | None
) -> CertificateStatus:
    """Verify the host's certificate against the vendor root keys and the host's own identity.

    Never raises: a certificate that does not check out is returned as unusable, with the reason.
    """
    if not token:
        return CertificateStatus(
            None, None, "this host is not certified yet; run `volact host activate`"
        )
    if not settings.vendor_id or not settings.vendor_root_keys:
        return CertificateStatus(
            None, None, "host.json names no vendor id or root keys; run `volact host activate`"
        )
    try:
        root_keys = [crypto.VerifyKey.from_paserk(text) for text in settings.vendor_root_keys]
    except crypto.KeyFormatError as exc:
        return CertificateStatus(None, None, f"host.json has an unreadable vendor root key: {exc}")
    try:
        certificate = verify_certificate(token, root_keys, vendor_id=settings.vendor_id)
    except InvalidHostCertificate as exc:
        return CertificateStatus(None, None, exc.message)
    if certificate.host_key != host_key.paserk:
        return CertificateStatus(
            None, None, "the host certificate was issued for another host key than this host's"
        )
    if certificate.host_id != settings.host_id:
        return CertificateStatus(
            None,
            None,
            f"the host certificate is for host {certificate.host_id}, not {settings.host_id}",
        )
    return CertificateStatus(certificate, token)


class RequestObserver(Protocol):
    """Told of every answered activation request: its outcome (``activated`` or the refusal's
    error code) and how long the service took. Called on the event loop; must be cheap."""

    def observe(self, outcome: str, seconds: float) -> None: ...


class HostService(VendorUpkeep):
    """Answers activation requests. Construct, ``await start()``, serve, ``await stop()``."""

    def __init__(
        self,
        settings: HostSettings,
        store: Store,
        signer: crypto.SigningKey,
        certificate_token: str | None,
        clock: Callable[[], int],
        *,
        event_retention: int = EVENT_RETENTION_SECONDS,
        event_rows: int = EVENT_RETENTION_ROWS,
        maintenance_interval: float = MAINTENANCE_INTERVAL,
        revocations: RevocationList | None = None,
    ) -> None:
        self.settings = settings
        self._apply_revocations(revocations)
        self.store = store
        self.signer = signer
        self.clock = clock
        self.event_retention = event_retention
        self.event_rows = event_rows
        self.maintenance_interval = maintenance_interval
        self._apply_certificate(settings, certificate_token)
        # Set by from_files: where to look for a certificate installed while the host runs.
        self._files: HostFiles | None = None
        self._rejected_token: str | None = None
        self.certificate_check_interval = CERTIFICATE_CHECK_INTERVAL
        self.vendor_upkeep_interval = host_revocations.FETCH_INTERVAL
        self._watch: asyncio.Task[None] | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._started = False
        self.observer: RequestObserver | None = None
        """Set (e.g. to the admin listener's metrics) to be told of every activation request."""

    def _apply_certificate(self, settings: HostSettings, certificate_token: str | None) -> None:
        """Check a certificate and make it the one requests are answered with."""
        status = unless_revoked(
            check_certificate(settings, self.signer.public_key, certificate_token),
            self.revocations,
        )
        certificate = status.certificate
        context = HostContext(
            settings.vendor_id or "",
            certificate,
            settings.renewal_interval,
            settings.retry_interval,
        )
        # The admin's intervals are checked against the vendor's bounds now, so a misconfigured
        # host fails at start with a clear message instead of on every request.
        policies: dict[str, GroupPolicy] = {}
        for group in sorted(certificate.groups) if certificate else []:
            try:
                policies[group] = context.policy(group)
            except BadRequest as exc:
                raise BadRequest(
                    f"host.json: {exc.message} (the vendor's bounds for group {group!r})",
                    exc.details,
                ) from exc
        # Swapped together, on the event loop, between requests.
        self.settings = settings
        self.certificate_status = status
        self._certificate_json = b'"host_certificate":%s,' % _JSON.encode(status.token).encode()
        self.context = context
        self._policies = policies

    async def check_for_new_certificate(self) -> bool:
        """Take up a certificate installed (``volact host activate``) while the host runs.

        Returns True when the certificate changed. A new certificate that does not check out
        (or a host.json that no longer reads) is logged and the current one is kept.
        """
        if self._files is None:
            return False
        files = self._files
        try:
            token: str | None = await asyncio.to_thread(files.certificate_token)
        except HostNotActivated:
            token = None
        if token in (self.certificate_status.token, self._rejected_token):
            return False
        try:
            settings = await asyncio.to_thread(files.settings)
            candidate = check_certificate(settings, self.signer.public_key, token)
            now = self.clock()
            if candidate.explain(now) and not self.certificate_status.explain(now):
                raise BadRequest(candidate.explain(now))
            self._apply_certificate(settings, token)
        except VolactError as exc:
            # Only once per unusable file: remember it as seen.
            log.error("a new host certificate was found but not taken up: %s", exc.message)
            self._rejected_token = token
            return False
        now = self.clock()
        reason = self.certificate_status.explain(now)
        details: dict[str, Any] = {"activated": not reason}
        if reason:
            details["reason"] = reason
        if self.certificate_status.certificate is not None:
            details["cert_id"] = self.certificate_status.certificate.cert_id
        log.info("host certificate taken up while running", extra={"activated": not reason})
        await self._record_event(Event("certificate_loaded", now, details=details))
        return True

    async def _watch_certificate(self) -> None:
        while True:
            await asyncio.sleep(self.certificate_check_interval)
            try:
                await self.check_for_new_certificate()
                await self.check_for_new_revocations()
            except Exception:
                log.exception("checking for a new host certificate failed")

    @classmethod
    def from_files(
        cls, files: HostFiles, store: Store, clock: Callable[[], int], **options: Any
    ) -> HostService:
        """The service of a host directory (``host.json``, signing key, certificate)."""
        settings = files.settings()
        signer = files.signing_key()
        try:
            token: str | None = files.certificate_token()
        except HostNotActivated:
            token = None
        options.setdefault("revocations", host_revocations.load(files, settings))
        service = cls(settings, store, signer, token, clock, **options)
        service._files = files
        return service

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, log whether the host can activate, start event retention."""
        if self._started:
            return
        await self.store.open()
        self._started = True
        now = self.clock()
        reason = self.certificate_status.explain(now)
        if reason:
            log.warning("this host cannot activate clients: %s", reason)
        details: dict[str, Any] = {"activated": not reason, "version": __version__}
        if reason:
            details["reason"] = reason
        await self.store.record_event(Event("host_started", now, details=details))
        if self.maintenance_interval > 0:
            self._maintenance = asyncio.create_task(self._maintain(), name="volact-maintenance")
        if self._files is not None and self.certificate_check_interval > 0:
            self._watch = asyncio.create_task(self._watch_certificate(), name="volact-cert")
        if self._files is not None and self.settings.vendor_url and self.vendor_upkeep_interval:
            self._fetch = asyncio.create_task(self._vendor_upkeep(), name="volact-vendor")

    def note_event(self, event: Event) -> None:
        """Record ``event`` soon, from synchronous code on the event loop (e.g. a DNS publisher's
        callback). A failure to store it is logged; ``stop()`` waits for pending events."""
        task = asyncio.get_running_loop().create_task(self._record_event(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record_event(self, event: Event) -> None:
        try:
            await self.store.record_event(event)
        except VolactError as exc:
            log.error("could not record a %s event: %s", event.kind, exc.message)

    async def stop(self) -> None:
        """Stop maintenance, store pending events, finish queued writes and close the store."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for task in (self._maintenance, self._watch, self._fetch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._maintenance = self._watch = None
        if self._started:
            self._started = False
            await self.store.close()

    async def __aenter__(self) -> HostService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def prune_events(self) -> int:
        """Apply event retention once (age and row count); returns how many events went."""
        removed = await self.store.prune_events(
            self.clock() - self.event_retention, keep=self.event_rows
        )
        if removed:
            log.info("event retention removed %d events", removed)
        return removed

    async def _maintain(self) -> None:
        while True:
            try:
                await self.prune_events()
            except VolactError as exc:
                log.error("event retention failed: %s", exc.message)
            except Exception:
                log.exception("event retention failed")
            await asyncio.sleep(self.maintenance_interval)

    # --- requests -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The body of ``GET /v1/health``."""
        now = self.clock()
        certificate = self.context.certificate
        return {
            "ok": True,
            "activated": self.certificate_status.activated_at(now),
            "host_id": self.settings.host_id,
            "groups": sorted(certificate.groups) if certificate else [],
            "version": __version__,
            "time": now,
        }

    async def activate(self, body: Any, client_address: str) -> dict[str, Any]:
        """Answer one ``POST /v1/activate`` body (decoded JSON). Raises a VolactError to refuse."""
        token, decision = await self._activate(body, client_address)
        return {
            "ok": True,
            "ticket": token,
            "host_certificate": self.certificate_status.token,
            **({"revocations": self.revocations.token} if self.revocations else {}),
            "count": decision.count,
            "threshold": decision.threshold,
        }

    async def activate_json(self, body: Any, client_address: str) -> bytes:
        """:meth:`activate`, answered as the JSON bytes of its answer (compact, in the same key
        order). The host sends these: the certificate's part is serialised once, not per request,
        and the ticket needs no escaping (a PASETO token is ASCII letters, digits, ``-_.``)."""
        token, decision = await self._activate(body, client_address)
        return b'{"ok":true,"ticket":"%s",%s%s"count":%d,"threshold":%d}' % (
            token.encode("ascii"),
            self._certificate_json,
            self._revocations_json,
            decision.count,
            decision.threshold,
        )

    async def _activate(self, body: Any, client_address: str) -> tuple[str, Decision]:
        """:meth:`_answer`, told to the observer when there is one."""
        observer = self.observer
        if observer is None:
            return await self._answer(body, client_address)
        started = perf_counter()
        try:
            answer = await self._answer(body, client_address)
        except VolactError as exc:
            observer.observe(exc.code, perf_counter() - started)
            raise
        observer.observe("activated", perf_counter() - started)
        return answer

    async def _answer(self, body: Any, client_address: str) -> tuple[str, Decision]:
        """The signed ticket and the decision of an activation; raises a VolactError to refuse."""
        request = parse_activation_request(body)
        now = self.clock()
        extra = {"state": str(request.state), "address": client_address}
        routed = route(request, self.context, now)
        if routed.outcome is not None:
            decision = _annotated(refused(request, routed, now), extra)
            await self._store(self.store.record(decision))
            raise self._refusal(decision, request, now, client_address)

        group = routed.group
        assert group is not None
        policy = self._policies[group]
        context = self.context

        def decision_for(view: GroupView) -> Decision:
            return _annotated(decide(request, group, view, context, now), extra)

        # The token leaves only once store.activate has returned, after the commit (Store rule
        # 7), so an answered ticket reports a durable write. The token alone is answered, so
        # this signs the payload as issue_ticket does without copying the Ticket.
        signer = self.signer
        sealed: list[str] = []

        def seal(decision: Decision) -> None:
            if decision.ticket is not None:
                sealed.append(crypto.sign(signer, TICKET_KIND, decision.ticket.payload()))

        decision = await self._store(
            self.store.activate(
                group,
                request.cmid,
                now,
                decision_for,
                count_limit=count_limit_for(policy.threshold),
                seal=seal,
            )
        )
        if decision.ticket is None:
            raise self._refusal(decision, request, now, client_address)
        return sealed[0], decision

    async def _store(self, pending: Awaitable[T]) -> T:
        """Await a store call; a storage failure is logged whole and answered plainly."""
        try:
            return await pending
        except StorageError as exc:
            log.error("storage failure: %s", exc.message)
            raise StorageError(
                "the host could not record this request (a storage problem, logged on the "
                "host); nothing was counted; try again later",
                {"retry_interval": self._retry_interval(None)},
            ) from exc

    def _retry_interval(self, group: str | None) -> int:
        policy = self._policies.get(group) if group else None
        if policy is not None:
            return policy.retry_interval
        return self.settings.retry_interval or DEFAULT_RETRY_INTERVAL

    def _refusal(
        self, decision: Decision, request: ActivationRequest, now: int, address: str
    ) -> VolactError:
        """The error a refused decision is answered with, with details a client can act on.

        Each refusal is also one log line that names the client (CMID, machine name, address),
        so that an admin can tell from the log which machine was refused and why."""
        outcome = decision.outcome
        code = decision.code
        if code is None:  # pragma: no cover - an activation always carries a ticket
            return InternalError("the host decided to activate but made no ticket")
        if log.isEnabledFor(logging.INFO):
            fields: dict[str, Any] = {
                "code": code,
                "cmid": request.cmid,
                "machine": request.machine,
                "product": request.product,
                "group": decision.group,
                "client": address,
            }
            if outcome is Outcome.BELOW_THRESHOLD:
                fields.update(count=decision.count, threshold=decision.threshold)
            log.info(
                "refused %s (CMID %s) for %s: %s",
                request.machine,
                request.cmid,
                request.product,
                code,
                extra={"fields": fields},
            )
        retry = self._retry_interval(decision.group)
        message = decision.message
        details: dict[str, Any] = {}
        if outcome is Outcome.BELOW_THRESHOLD:
            message = (
                f"{decision.count} of {decision.threshold} distinct clients have asked in the "
                f"last {COUNT_WINDOW // 86400} days; this host activates once {decision.threshold} "
                "have; the request was counted, retry later"
            )
            details = {
                "count": decision.count,
                "threshold": decision.threshold,
                "retry_interval": retry,
            }
        elif outcome is Outcome.BLOCKED:
            details = {"cmid": request.cmid}
        elif outcome is Outcome.TIME_SKEW:
            details = {
                "host_time": now,
                "client_time": request.client_time,
                "tolerance": CLOCK_SKEW_TOLERANCE,
            }
        elif outcome is Outcome.PRODUCT_NOT_HOSTED:
            details = {"product": request.product}
        elif outcome is Outcome.HOST_NOT_ACTIVATED:
            message = (
                f"{message}; the host's administrator must run `volact host activate`"
                if message
                else "this host is not activated"
            )
            details = {"retry_interval": retry}
        return error_from_code(code, message or code.replace("_", " "), details)


def unless_revoked(
    status: CertificateStatus, revocations: RevocationList | None
) -> CertificateStatus:
    """``status``, unusable if the vendor's list names the certificate (or its host key)."""
    if status.certificate is None:
        return status
    try:
        check_revocation(revocations, status.certificate)
    except VolactError as exc:
        reason = exc.details.get("reason", "revoked")
        return CertificateStatus(
            None,
            status.token,
            f"the vendor revoked this host's certificate ({reason}, revocation list "
            f"{exc.details.get('sequence')}); ask the vendor for a new certification",
        )
    return status


def _annotated(decision: Decision, extra: dict[str, Any]) -> Decision:
    """The decision with the client's state and address added to its request event.

    The core builds a fresh ``details`` dict for every event of every decision, so adding to it
    in place is safe, and it saves copying two frozen dataclasses on every request.
    """
    events = decision.events
    if events and events[0].kind == "activation_request":
        events[0].details.update(extra)
    return decision
