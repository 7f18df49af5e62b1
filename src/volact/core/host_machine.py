"""The host's decision for one activation request (SPEC §4), as a pure function.

Rules:

1. A host with no certificate, or whose certificate is outside its validity at ``now``, answers
   ``HOST_NOT_ACTIVATED`` and writes nothing.
2. The key must be a GVLK whose tags name the requested product and a group this host is
   certified for (``INVALID_KEY`` / ``PRODUCT_NOT_HOSTED``); the group comes from the GVLK, so a
   certified group's new products need no host change.
3. A client clock more than 4 hours from the host's is refused (``TIME_SKEW``); nothing is
   written, so a skewed client neither counts nor refreshes its place.
4. A blocked CMID is refused (``BLOCKED``); it is not counted and its row is not refreshed.
5. Otherwise the CMID is added or refreshed (last seen = ``now``) — this is the write — and the
   count is the number of distinct unblocked CMIDs of the group seen within the count window
   (30 days), including this one. Count ≥ threshold → ``ACTIVATED`` with a ticket valid for the
   vendor's validity from ``now``; below → ``BELOW_THRESHOLD``.
6. A known CMID arriving with another fingerprint is a cloned image: an event is recorded and
   the row takes the new fingerprint (the client makes a new CMID by itself when it notices).

Every request produces exactly one event (``activation_request`` with its outcome) plus a
``cloned_image`` event when rule 6 applies. The store carries out ``Decision.write`` and
``Decision.events`` in one transaction and hands the decision to the service's ``seal``, which
signs ``Decision.ticket`` (store rule 7, :mod:`volact.store.base`): the SQLite store seals while
its batch commits, the others after their commit. An answer leaves only after the commit.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import Any

from volact.core import keys
from volact.core.errors import InvalidKey
from volact.core.policy import CLOCK_SKEW_TOLERANCE, COUNT_WINDOW, GroupPolicy
from volact.core.protocol import ActivationRequest
from volact.core.tickets import ISSUER_HOST, HostCertificate, Ticket


class Outcome(enum.StrEnum):
    ACTIVATED = "activated"
    BELOW_THRESHOLD = "below_threshold"
    BLOCKED = "blocked"
    TIME_SKEW = "time_skew"
    PRODUCT_NOT_HOSTED = "product_not_hosted"
    INVALID_KEY = "invalid_key"
    HOST_NOT_ACTIVATED = "host_not_activated"


# The stable error code each refusal is reported with (SPEC §6).
OUTCOME_CODES: dict[Outcome, str | None] = {
    Outcome.ACTIVATED: None,
    Outcome.BELOW_THRESHOLD: "count_insufficient",
    Outcome.BLOCKED: "client_blocked",
    Outcome.TIME_SKEW: "time_skew",
    Outcome.PRODUCT_NOT_HOSTED: "product_not_hosted",
    Outcome.INVALID_KEY: "invalid_key",
    Outcome.HOST_NOT_ACTIVATED: "host_not_activated",
}


@dataclass(frozen=True)
class HostContext:
    """What the host knows about itself: its certificate and the admin's interval choices."""

    vendor_id: str
    certificate: HostCertificate | None
    renewal_interval: int | None = None
    retry_interval: int | None = None

    def __post_init__(self) -> None:
        # The effective policy of each group is computed, and checked against the vendor's
        # bounds, once per context rather than on every request.
        policies: dict[str, GroupPolicy] = {}
        if self.certificate is not None:
            for name, policy in self.certificate.groups.items():
                policies[name] = policy.with_admin_intervals(
                    self.renewal_interval, self.retry_interval
                )
        object.__setattr__(self, "_policies", policies)

    def policy(self, group: str) -> GroupPolicy:
        policies: dict[str, GroupPolicy] = self.__dict__["_policies"]
        return policies[group]


@dataclass(frozen=True)
class ClientRow:
    """What the store holds about one CMID in one group."""

    cmid: str
    group: str
    fingerprint: str
    blocked: bool
    first_seen: int
    last_seen: int

    def counted_at(self, now: int) -> bool:
        return not self.blocked and self.last_seen >= now - COUNT_WINDOW


@dataclass(frozen=True)
class GroupView:
    """The store's view for one request, read in the same transaction as the write.

    ``count`` is the number of distinct unblocked CMIDs of the group with ``last_seen`` inside
    the count window, *including* ``client`` if it is counted. Stores may cap it (at twice the
    threshold, at least) so that the lookup costs the same with a million clients as with ten.
    """

    count: int
    client: ClientRow | None


@dataclass(frozen=True)
class ClientWrite:
    """Add or refresh one client row."""

    cmid: str
    group: str
    product: str
    fingerprint: str
    machine: str
    seen_at: int
    state: str
    valid_until: int | None  # set when this request activated the client


@dataclass(frozen=True)
class Event:
    kind: str  # "activation_request", "cloned_image", "dns_publish_failed", …
    at: int
    cmid: str | None = None
    group: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """The first, store-free step: which group a request belongs to, or why it is refused."""

    outcome: Outcome | None  # None = go on to the store
    group: str | None
    message: str = ""


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    group: str | None
    count: int
    threshold: int
    write: ClientWrite | None
    events: tuple[Event, ...]
    ticket: Ticket | None  # unsigned; signed by the store's seal call, answered after the commit
    message: str = ""

    @property
    def code(self) -> str | None:
        return OUTCOME_CODES[self.outcome]


@functools.lru_cache(maxsize=1024)
def _group_of_key(key: str, vendor_id: str, product: str, groups: tuple[str, ...]) -> str:
    """The certified group that a GVLK of ``product`` belongs to, or InvalidKey.

    Remembered (a function of its arguments only): every client of a product sends the same
    GVLK, so a host answers the same question over and over. Refusals are not remembered.
    """
    return keys.gvlk_group_matches(keys.parse_key(key), vendor_id, product, groups)


def route(request: ActivationRequest, context: HostContext, now: int) -> Route:
    """Rules 1–3: checks that need no store."""
    certificate = context.certificate
    if certificate is None or not certificate.valid_at(now):
        return Route(
            Outcome.HOST_NOT_ACTIVATED,
            None,
            "this host has no valid certificate from the vendor"
            if certificate is None
            else "this host's certificate is outside its validity",
        )
    try:
        group = _group_of_key(
            request.key, context.vendor_id, request.product, tuple(certificate.groups)
        )
    except InvalidKey as exc:
        # Only a good GVLK of this vendor's product whose group is not certified here is "not
        # hosted"; every other mismatch (channel, vendor, product, typo) is an invalid key.
        if exc.details.get("reason") == "group":
            return Route(
                Outcome.PRODUCT_NOT_HOSTED,
                None,
                f"this host is not certified for the group of product {request.product!r}",
            )
        return Route(Outcome.INVALID_KEY, None, exc.message)
    if abs(request.client_time - now) > CLOCK_SKEW_TOLERANCE:
        return Route(
            Outcome.TIME_SKEW,
            group,
            "the client's clock differs from the host's by more than 4 hours",
        )
    return Route(None, group)


def refused(request: ActivationRequest, routed: Route, now: int) -> Decision:
    """The decision for a request that ``route`` refused (one event, no client write)."""
    assert routed.outcome is not None
    event = Event(
        "activation_request",
        now,
        request.cmid,
        routed.group,
        {"outcome": str(routed.outcome), "product": request.product, "machine": request.machine},
    )
    return Decision(routed.outcome, routed.group, 0, 0, None, (event,), None, routed.message)


def decide(
    request: ActivationRequest,
    group: str,
    view: GroupView,
    context: HostContext,
    now: int,
) -> Decision:
    """Rules 4–6 for a routed request, given the store's view read in the same transaction."""
    policy = context.policy(group)
    threshold = policy.threshold
    client = view.client
    base = {"product": request.product, "machine": request.machine}

    if client is not None and client.blocked:
        event = Event(
            "activation_request", now, request.cmid, group, {**base, "outcome": "blocked"}
        )
        return Decision(
            Outcome.BLOCKED,
            group,
            view.count,
            threshold,
            None,
            (event,),
            None,
            "this client is blocked by the host's administrator",
        )

    events: list[Event] = []
    if client is not None and client.fingerprint != request.fingerprint:
        events.append(
            Event(
                "cloned_image",
                now,
                request.cmid,
                group,
                {
                    **base,
                    "old_fingerprint": client.fingerprint,
                    "new_fingerprint": request.fingerprint,
                },
            )
        )
    already_counted = client is not None and client.counted_at(now)
    count = view.count if already_counted else view.count + 1
    activated = count >= threshold
    valid_until = now + policy.validity if activated else None
    write = ClientWrite(
        cmid=request.cmid,
        group=group,
        product=request.product,
        fingerprint=request.fingerprint,
        machine=request.machine,
        seen_at=now,
        state=str(request.state),
        valid_until=valid_until,
    )
    outcome = Outcome.ACTIVATED if activated else Outcome.BELOW_THRESHOLD
    events.insert(
        0,
        Event(
            "activation_request",
            now,
            request.cmid,
            group,
            {**base, "outcome": str(outcome), "count": count, "threshold": threshold},
        ),
    )
    ticket = None
    message = ""
    if activated:
        assert context.certificate is not None
        ticket = Ticket(
            issuer=ISSUER_HOST,
            issuer_id=context.certificate.host_id,
            cert_id=context.certificate.cert_id,
            product=request.product,
            group=group,
            cmid=request.cmid,
            fingerprint=request.fingerprint,
            issued_at=now,
            valid_until=valid_until,
            renewal_interval=policy.renewal_interval,
            retry_interval=policy.retry_interval,
            oot_grace=policy.oot_grace,
            count=count,
            threshold=threshold,
            nonce=request.nonce,
        )
    else:
        message = f"{count} of {threshold} clients so far"
    return Decision(outcome, group, count, threshold, write, tuple(events), ticket, message)
