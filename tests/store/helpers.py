"""Requests and decisions for store tests, made with the real host decision (core)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from volact.core import keys
from volact.core.host_machine import Decision, GroupView, HostContext, decide, refused, route
from volact.core.policy import GroupPolicy
from volact.core.protocol import ActivationRequest
from volact.core.states import State
from volact.core.tickets import HostCertificate
from volact.store.base import Store, count_limit_for

VENDOR = "acme"
GROUP = "office-2026"
PRODUCT = "writer-2026"
T0 = 1_800_000_000
DAY = 86400

CERTIFICATE = HostCertificate(
    cert_id="cert-1",
    vendor_id=VENDOR,
    host_id="host-1",
    host_key="k4.public.unused-in-store-tests",
    customer="Example Corp",
    key_serial="host-0001",
    groups={GROUP: GroupPolicy(), "other-2026": GroupPolicy(threshold=1)},
    not_before=T0 - 365 * DAY,
    not_after=T0 + 730 * DAY,
    issued_at=T0 - 365 * DAY,
)
CONTEXT = HostContext(VENDOR, CERTIFICATE)
GVLK = keys.make_gvlk(VENDOR, GROUP, PRODUCT).text


def cmid(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def request(
    n: int,
    now: int = T0,
    *,
    fingerprint: str | None = None,
    product: str = PRODUCT,
    group: str = GROUP,
    state: State = State.OOB_GRACE,
) -> ActivationRequest:
    return ActivationRequest(
        product=product,
        key=keys.make_gvlk(VENDOR, group, product).text,
        cmid=cmid(n),
        fingerprint=fingerprint or f"{n:016x}",
        machine=f"pc-{n}",
        client_time=now,
        nonce="A" * 22,
        state=state,
    )


async def activate(
    store: Store, req: ActivationRequest, now: int = T0, *, group: str = GROUP
) -> Decision:
    """What the host service does for a routed request."""
    threshold = CERTIFICATE.groups[group].threshold

    def decision_for(view: GroupView) -> Decision:
        made = decide(req, group, view, CONTEXT, now)
        # The service adds the client's state to the request event (for the statistics).
        first, *rest = made.events
        first = replace(first, details={**first.details, "state": str(req.state)})
        return replace(made, events=(first, *rest))

    return await store.activate(
        group, req.cmid, now, decision_for, count_limit=count_limit_for(threshold)
    )


def refusal(req: ActivationRequest, now: int) -> Decision:
    routed = route(req, CONTEXT, now)
    assert routed.outcome is not None
    return refused(req, routed, now)
