"""Lifecycle policy: the numbers of SPEC §3, their defaults and their bounds.

A :class:`GroupPolicy` travels inside the vendor-signed host certificate, one per product group,
so a customer can neither raise the validity nor lower the threshold. The host admin may choose
the renewal and retry intervals, but only inside the bounds the vendor set
(:meth:`GroupPolicy.with_admin_intervals`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from volact.core.durations import DAY, HOUR, MINUTE, format_duration
from volact.core.errors import BadRequest

# Fixed by the product (not configurable): SPEC §3 and §4.
COUNT_WINDOW = 30 * DAY
CLOCK_SKEW_TOLERANCE = 4 * HOUR
EXPIRY_WARNING = 30 * DAY
# How far the client's clock may run behind its latest trusted time before it counts as tampering.
CLOCK_ROLLBACK_TOLERANCE = 10 * MINUTE

DEFAULT_OOB_GRACE = 30 * DAY
OOB_GRACE_BOUNDS = (0, 180 * DAY)
DEFAULT_REARM_LIMIT = 5
REARM_LIMIT_BOUNDS = (0, 100)
DEFAULT_HOST_LIMIT = 6
REACTIVATIONS_PER_HOST = 10
DEFAULT_CERTIFICATE_LIFETIME = 730 * DAY

INTERVAL_BOUNDS = (15 * MINUTE, 30 * DAY)
VALIDITY_BOUNDS = (1 * DAY, 730 * DAY)
GRACE_BOUNDS = (0, 180 * DAY)
THRESHOLD_BOUNDS = (1, 1000)


def _check(name: str, value: object, bounds: tuple[int, int], *, seconds: bool = True) -> None:
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{name} must be a whole number", {"field": name})
    if not low <= value <= high:
        shown = f"{format_duration(low)}–{format_duration(high)}" if seconds else f"{low}–{high}"
        given = format_duration(value) if seconds else str(value)
        raise BadRequest(
            f"{name} {given} is outside the allowed range {shown}",
            {"field": name, "value": value, "min": low, "max": high},
        )


@dataclass(frozen=True)
class GroupPolicy:
    """The vendor's policy for one product group (durations in seconds)."""

    validity: int = 180 * DAY
    renewal_interval: int = 7 * DAY
    retry_interval: int = 2 * HOUR
    oot_grace: int = 30 * DAY
    threshold: int = 5
    # The vendor's bounds for what a host admin may choose.
    renewal_min: int = INTERVAL_BOUNDS[0]
    renewal_max: int = INTERVAL_BOUNDS[1]
    retry_min: int = INTERVAL_BOUNDS[0]
    retry_max: int = INTERVAL_BOUNDS[1]

    def __post_init__(self) -> None:
        _check("validity", self.validity, VALIDITY_BOUNDS)
        _check("oot_grace", self.oot_grace, GRACE_BOUNDS)
        _check("threshold", self.threshold, THRESHOLD_BOUNDS, seconds=False)
        for name in ("renewal_min", "renewal_max", "retry_min", "retry_max"):
            _check(name, getattr(self, name), INTERVAL_BOUNDS)
        if self.renewal_min > self.renewal_max or self.retry_min > self.retry_max:
            raise BadRequest("an interval's minimum is above its maximum")
        _check("renewal_interval", self.renewal_interval, (self.renewal_min, self.renewal_max))
        _check("retry_interval", self.retry_interval, (self.retry_min, self.retry_max))

    def with_admin_intervals(
        self, renewal_interval: int | None = None, retry_interval: int | None = None
    ) -> GroupPolicy:
        """The same policy with the host admin's intervals, checked against the vendor's bounds."""
        return replace(
            self,
            renewal_interval=self.renewal_interval
            if renewal_interval is None
            else renewal_interval,
            retry_interval=self.retry_interval if retry_interval is None else retry_interval,
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> GroupPolicy:
        """Build from untrusted JSON; unknown fields are refused, missing ones take defaults."""
        if not isinstance(data, dict):
            raise BadRequest("a group policy must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadRequest(f"unknown policy field(s): {', '.join(unknown)}", {"fields": unknown})
        return cls(**data)
