"""The vendor's rules, without I/O: group policies, key limits, certificates and MAK tickets.

Rules (documented for vendors in docs/vendor.md):

1. **A group's policy is set once, by the group.** The first product added to a group creates
   the group with the policy options given (defaults for the rest). A later product of the same
   group may repeat a value, but a *different* value is refused with a message that points at
   ``volact vendor group set``, because counts, thresholds and validity are per group and a
   product cannot quietly change them for its siblings. A changed policy reaches hosts with their
   next certificate.
2. **A host key certifies at most ``host_limit`` distinct host ids** (default 6). One host may
   be certified once and then re-certified up to :data:`REACTIVATIONS_PER_HOST` (10) times
   (a certification with a new host signing key; a renewal with the same key counts nothing).
   A re-certification supersedes the host id's previous certificate, so a key never has more
   than ``host_limit`` live certificates (volact.authority.revocations rule 1). Beyond either
   limit: ``key_exhausted``.
3. **A request is answered once.** Every host activation request carries a request id; the same
   id a second time (online or offline) is ``replayed_request`` and counts nothing.
4. **A MAK counts machines**, a machine being a (CMID, fingerprint) pair. The same pair again is
   answered with a fresh ticket without using a count (a lost ticket, a reinstall of the state
   file); a known CMID with another fingerprint is a clone and counts as another machine.
5. **Certificates are backdated** by :data:`CERTIFICATE_BACKDATE` (one day) so that a host whose
   clock runs a little behind the vendor's can sign tickets at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from volact import crypto
from volact.core.durations import DAY, format_duration, parse_duration
from volact.core.errors import BadRequest, ConfigurationError, KeyExhausted
from volact.core.policy import (
    DEFAULT_CERTIFICATE_LIFETIME,
    DEFAULT_HOST_LIMIT,
    REACTIVATIONS_PER_HOST,
    VALIDITY_BOUNDS,
    GroupPolicy,
)
from volact.core.protocol import ActivationRequest
from volact.core.tickets import ISSUER_VENDOR, HostCertificate, Ticket

__all__ = [
    "CERTIFICATE_BACKDATE",
    "DEFAULT_HOST_LIMIT",
    "HOST_LIMIT_BOUNDS",
    "MAK_COUNT_BOUNDS",
    "POLICY_FIELDS",
    "REACTIVATIONS_PER_HOST",
    "HostUsage",
    "MAKUsage",
    "build_certificate",
    "build_mak_ticket",
    "check_host_limits",
    "check_mak_limit",
    "merge_group_policy",
    "parse_mak_validity",
    "root_keys_for_export",
    "update_group_policy",
]

CERTIFICATE_BACKDATE = DAY
HOST_LIMIT_BOUNDS = (1, 1000)
MAK_COUNT_BOUNDS = (1, 1_000_000)
POLICY_FIELDS = tuple(f.name for f in fields(GroupPolicy))
_SECONDS_FIELDS = frozenset(POLICY_FIELDS) - {"threshold"}


def _shown(name: str, value: int) -> str:
    return format_duration(value) if name in _SECONDS_FIELDS else str(value)


def _option(name: str) -> str:
    return "--" + name.replace("_interval", "").replace("_", "-")


def merge_group_policy(
    group: str, existing: GroupPolicy | None, requested: Mapping[str, int]
) -> GroupPolicy:
    """The policy of ``group`` after adding a product that asks for ``requested`` values.

    A new group (``existing`` None) takes the requested values over the defaults. An existing
    group keeps its policy; a requested value that differs raises :class:`BadRequest` naming
    ``volact vendor group set``. Values out of bounds raise :class:`BadRequest` too.
    """
    unknown = sorted(set(requested) - set(POLICY_FIELDS))
    if unknown:
        raise ValueError(f"unknown policy fields: {unknown}")
    if existing is None:
        return GroupPolicy(**requested)
    conflicts = [
        name for name, value in sorted(requested.items()) if getattr(existing, name) != value
    ]
    if conflicts:
        described = ", ".join(
            f"{name} {_shown(name, getattr(existing, name))} (asked: "
            f"{_shown(name, requested[name])})"
            for name in conflicts
        )
        options = " ".join(f"{_option(name)} {_shown(name, requested[name])}" for name in conflicts)
        raise BadRequest(
            f"group {group!r} already has {described}; products share their group's policy. "
            f"Leave the option out, or change it for the whole group with "
            f"`volact vendor group set {group} {options}`",
            {"group": group, "fields": conflicts},
        )
    return existing


def update_group_policy(existing: GroupPolicy, changes: Mapping[str, int]) -> GroupPolicy:
    """``existing`` with ``changes`` applied (checked against the bounds of SPEC §3)."""
    return replace(existing, **changes)


def parse_mak_validity(text: str) -> int | None:
    """``"permanent"`` → None; ``"180d"`` → seconds, within 1–730 days. Raises BadRequest."""
    if text.strip().lower() == "permanent":
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigurationError(f"--validity: {exc} (or 'permanent')") from exc
    low, high = VALIDITY_BOUNDS
    if not low <= seconds <= high:
        raise ConfigurationError(
            f"--validity {format_duration(seconds)} is outside "
            f"{format_duration(low)}–{format_duration(high)} (or 'permanent')"
        )
    return seconds


@dataclass(frozen=True)
class HostUsage:
    """What a host key has certified so far, as the store counts it."""

    serial: str
    host_limit: int
    hosts: int  # distinct host ids certified with this key
    host_known: bool  # whether the asking host id is among them
    certifications_of_host: int  # how many times this host id was certified with this key
    # live (unexpired, not superseded or revoked) certificates of this key's OTHER host ids
    live_of_other_hosts: int = 0


def check_host_limits(usage: HostUsage, host_id: str) -> None:
    """Raise :class:`KeyExhausted` if certifying ``host_id`` would break a limit (rule 2)."""
    if not usage.host_known and usage.hosts >= usage.host_limit:
        raise KeyExhausted(
            f"this host key has certified all of its {usage.host_limit} hosts; re-certify one of "
            "those hosts (same host directory) instead of a new one, or ask the vendor for more "
            "hosts on this key or for a new key",
            {"serial": usage.serial, "hosts": usage.hosts, "limit": usage.host_limit},
        )
    if usage.live_of_other_hosts >= usage.host_limit:
        # Implied by the distinct-host limit (a host id has one live certificate: a new one
        # supersedes it); checked on its own so that the invariant holds whatever the history.
        raise KeyExhausted(
            f"this host key has {usage.live_of_other_hosts} live host certificates, its limit "
            f"of {usage.host_limit}; revoke one (`volact vendor revoke CERT`) or ask the vendor "
            "for more hosts on this key",
            {"serial": usage.serial, "live": usage.live_of_other_hosts, "limit": usage.host_limit},
        )
    allowed = 1 + REACTIVATIONS_PER_HOST
    if usage.certifications_of_host >= allowed:
        raise KeyExhausted(
            f"host {host_id} was certified {usage.certifications_of_host} times with this key "
            f"(once plus {REACTIVATIONS_PER_HOST} re-certifications, the limit); ask the vendor "
            "to reset the count or for a new host key",
            {
                "serial": usage.serial,
                "host_id": host_id,
                "certifications": usage.certifications_of_host,
                "limit": allowed,
            },
        )


@dataclass(frozen=True)
class MAKUsage:
    serial: str
    limit: int
    machines: int  # distinct (CMID, fingerprint) pairs activated so far
    machine_known: bool


def check_mak_limit(usage: MAKUsage) -> None:
    """Raise :class:`KeyExhausted` unless the machine is known or a count is left (rule 4)."""
    if not usage.machine_known and usage.machines >= usage.limit:
        raise KeyExhausted(
            f"this MAK has activated all of its {usage.limit} machines; ask the vendor for more "
            "activations or a new MAK (machines activated before keep their activation)",
            {"serial": usage.serial, "machines": usage.machines, "limit": usage.limit},
        )


def build_certificate(
    *,
    cert_id: str,
    vendor_id: str,
    host_id: str,
    host_key: str,
    customer: str,
    key_serial: str,
    groups: Mapping[str, GroupPolicy],
    now: int,
    lifetime: int = DEFAULT_CERTIFICATE_LIFETIME,
) -> HostCertificate:
    """The (unsigned) certificate for one host: valid from a day ago for ``lifetime``."""
    return HostCertificate(
        cert_id=cert_id,
        vendor_id=vendor_id,
        host_id=host_id,
        host_key=host_key,
        customer=customer,
        key_serial=key_serial,
        groups=dict(groups),
        not_before=now - CERTIFICATE_BACKDATE,
        not_after=now + lifetime,
        issued_at=now,
    )


def build_mak_ticket(
    *,
    vendor_id: str,
    request: ActivationRequest,
    group: str,
    policy: GroupPolicy,
    validity: int | None,
    machines: int,
    now: int,
) -> Ticket:
    """The (unsigned) vendor ticket answering a MAK activation request.

    ``valid_until`` is None (permanent) unless the MAK has a validity. The intervals and the
    out-of-tolerance grace are the group's (they matter only for MAKs with a validity). ``count``
    is the number of machines the MAK has activated, ``threshold`` is 1: a MAK has no threshold.
    """
    return Ticket(
        issuer=ISSUER_VENDOR,
        issuer_id=vendor_id,
        product=request.product,
        group=group,
        cmid=request.cmid,
        fingerprint=request.fingerprint,
        issued_at=now,
        valid_until=None if validity is None else now + validity,
        renewal_interval=policy.renewal_interval,
        retry_interval=policy.retry_interval,
        oot_grace=policy.oot_grace,
        count=machines,
        threshold=1,
        nonce=request.nonce,
        cert_id=None,
    )


def root_keys_for_export(active: crypto.SigningKey, listed: list[str]) -> tuple[str, ...]:
    """The root keys a descriptor or response lists: the active one first, then the others."""
    first = active.public_key.paserk
    return (first, *[key for key in listed if key != first])
