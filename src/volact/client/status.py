"""What ``License.status()`` returns: the client's state of one product, ready to show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from volact.core.states import State

__all__ = ["LicenseStatus", "iso", "plain_next_step", "to_datetime"]

ASK_IT = "ask your IT department to check the activation host"
# Last attempts that only someone else can put right: what the user should ask for.
_ASK_FOR = {
    "client_blocked": "ask your IT department: the activation host has blocked this machine",
    "time_skew": "set this machine's clock right (or let it sync its time), then activate again",
    "invalid_key": "ask your IT department or the vendor for a valid product key",
    "product_not_hosted": "ask your IT department: the activation host does not serve this product",
    "invalid_host_certificate": "ask your IT department: the activation host answering this "
    "machine is not certified by the product's vendor",
}
# Last attempts that mean this machine could not reach an activation host.
_UNREACHED = frozenset({"no_host_found", "host_unreachable", "host_not_activated"})


def to_datetime(timestamp: int | None) -> datetime | None:
    """Unix seconds as an aware UTC datetime (None stays None)."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``: ``2027-07-14T00:00:00Z``."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LicenseStatus:
    """The licensing state of one product on this machine at one moment.

    Times are aware UTC datetimes. ``state`` is a :class:`~volact.core.states.State` (a string
    enum: ``status.state == "licensed"`` works). ``reason`` says why the product is in
    ``notification`` (``oob_grace_expired``, ``oot_grace_expired``, ``clock_tampered``) or,
    in any state, why a stored activation was not counted (``invalid_ticket``,
    ``invalid_host_certificate``); otherwise it is None.
    """

    product: str
    product_name: str
    state: State
    reason: str | None
    valid_until: datetime | None  # None: not activated, or activated permanently (MAK)
    grace_ends_at: datetime | None  # the end of the OOB or OOT grace now running
    days_left: int | None  # whole days until the current state ends (None: never ends)
    expiry_warning: bool  # licensed and valid-until is within 30 days
    next_attempt_at: datetime | None  # when the client activates or renews next (None: never)
    channel: str | None = None  # "gvlk" or "mak"
    partial_key: str | None = None  # the key's last five characters
    cmid: str | None = None
    host: str | None = None  # the host (host:port) that gave the activation held
    host_id: str | None = None  # the id of the host (or vendor, for a MAK) that signed it
    activated_at: datetime | None = None  # the ticket's issue time (the host's clock)
    installed_at: datetime | None = None  # start of the OOB grace (moved by a rearm)
    renewal_interval: int | None = None  # seconds
    retry_interval: int | None = None  # seconds
    last_attempt_at: datetime | None = None
    last_error: str | None = None  # error code of the last attempt (None if it succeeded)
    last_host: str | None = None  # the host reached by the last attempt
    rearms_left: int | None = None
    activation_error: str | None = None  # why the stored activation did not verify

    @property
    def licensed(self) -> bool:
        """Whether the product is activated and inside its validity."""
        return self.state is State.LICENSED

    @property
    def usable(self) -> bool:
        """Whether the app should work fully (any state but unlicensed and notification)."""
        return self.state in (State.OOB_GRACE, State.LICENSED, State.OOT_GRACE)

    @property
    def advice(self) -> str:
        """What to do next, in plain words for anyone (:func:`plain_next_step`)."""
        return plain_next_step(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data (times in ISO 8601 UTC), what ``volact client status --json`` prints."""
        return {
            "product": self.product,
            "product_name": self.product_name,
            "state": self.state.value,
            "reason": self.reason,
            "valid_until": iso(self.valid_until),
            "grace_ends_at": iso(self.grace_ends_at),
            "days_left": self.days_left,
            "expiry_warning": self.expiry_warning,
            "next_attempt_at": iso(self.next_attempt_at),
            "channel": self.channel,
            "partial_key": self.partial_key,
            "cmid": self.cmid,
            "host": self.host,
            "host_id": self.host_id,
            "activated_at": iso(self.activated_at),
            "installed_at": iso(self.installed_at),
            "renewal_interval": self.renewal_interval,
            "retry_interval": self.retry_interval,
            "last_attempt_at": iso(self.last_attempt_at),
            "last_error": self.last_error,
            "last_host": self.last_host,
            "rearms_left": self.rearms_left,
            "activation_error": self.activation_error,
            "advice": self.advice,
        }


def _for(days: int | None) -> str:
    return "" if days is None else f" for {days} more day{'s' if days != 1 else ''}"


def _within(days: int | None) -> str:
    if days is None:
        return ""
    if days <= 0:
        return " today"
    return f" within {days} day{'s' if days != 1 else ''}"


def plain_next_step(status: LicenseStatus) -> str:
    """One sentence saying what the person at this machine should do, without KMS terms.

    The terms (notification, out-of-tolerance grace, CMID) stay in the status for admins; this
    says what to do: nothing, connect to the company network within so many days, or ask the IT
    department to check the activation host.
    """
    state, error = status.state, status.last_error
    if state is State.UNLICENSED:
        return "Install the product key (ask your IT department for it)."
    if state is State.LICENSED:
        if error in _ASK_FOR:
            # Blocking is not revocation: the activation held runs on, but cannot be renewed.
            return (
                f"Nothing to do for now: the product is activated{_for(status.days_left)}, but "
                f"it cannot renew; {_ASK_FOR[error]}."
            )
        if status.expiry_warning:
            return (
                f"Connect to the company network{_within(status.days_left)} so the activation "
                f"renews; if it does not, {ASK_IT}."
            )
        return "Nothing to do: the product is activated and renews by itself."
    if status.reason == "clock_tampered":
        return "Set this machine's clock right, then activate again."
    if error in _ASK_FOR:
        return _ASK_FOR[error][0].upper() + _ASK_FOR[error][1:] + "."
    if state is State.NOTIFICATION:
        return f"Connect to the company network and {ASK_IT}; the product is not activated."
    if error == "count_insufficient":
        return (
            "Nothing to do: the product activates by itself once enough machines in your "
            "company have asked the activation host."
        )
    if state is State.OOT_GRACE or error in _UNREACHED:
        return (
            f"Connect to the company network{_within(status.days_left)} so the product can "
            f"activate; if you are connected, {ASK_IT}."
        )
    return (
        f"Nothing to do yet: the product activates by itself when this machine is on the "
        f"company network (needed{_within(status.days_left)})."
    )
