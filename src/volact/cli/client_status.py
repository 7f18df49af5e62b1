"""How ``volact client status`` shows a status: the terms for admins (like ``slmgr /dlv`` and
``/xpr``), with a few plain words beside each (from :mod:`volact.core.glossary`) and one line
that says what to do next for anyone (:func:`volact.client.status.plain_next_step`).

Imports only the standard library and the core at load time: ``volact client status`` must
start fast.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from volact.core.glossary import GLOSSARY

if TYPE_CHECKING:
    from volact.client.status import LicenseStatus

_CHANNEL_WORDS = {
    "gvlk": "GVLK (volume activation through an activation host)",
    "mak": "MAK (activation with the vendor, online or by files)",
}


def when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _days(count: int | None) -> str:
    if count is None:
        return ""
    return f" ({count} day{'s' if count != 1 else ''} left)"


def _span(seconds: int | None) -> str:
    from volact.core.durations import humanize

    return "-" if seconds is None else humanize(seconds)


def _words(term: str, kind: str) -> str:
    found = GLOSSARY.get((term, kind))
    return f"{term} ({found.short})" if found else term


def status_lines(status: LicenseStatus, vendor_name: str, group: str) -> list[str]:
    """The human form of a status, like ``slmgr /dlv`` and ``/xpr`` together."""
    rows: list[tuple[str, str]] = [
        ("Name", status.product_name),
        ("Product", f"{status.product} (group {group}, vendor {vendor_name})"),
        ("Partial product key", status.partial_key or "-"),
        ("Channel", _CHANNEL_WORDS.get(status.channel or "", status.channel or "-")),
        ("License status", _words(status.state.value, "client state")),
    ]
    if status.reason:
        found = GLOSSARY.get((status.reason, "status reason"))
        rows.append(("Reason", f"{status.reason}: {found.short}" if found else status.reason))
    if status.activation_error:
        rows.append(("Verification", status.activation_error))
    if status.state.value == "licensed":
        if status.valid_until is None:
            rows.append(("Valid until", "permanently activated"))
        else:
            warning = " (expires soon: renew)" if status.expiry_warning else ""
            rows.append(
                ("Valid until", when(status.valid_until) + _days(status.days_left) + warning)
            )
    elif status.grace_ends_at is not None:
        rows.append(("Grace ends", when(status.grace_ends_at) + _days(status.days_left)))
    if status.valid_until is not None and status.state.value != "licensed":
        rows.append(("Activation ended", when(status.valid_until)))
    if status.host or status.host_id:
        rows.append(("Activated by", f"{status.host or '-'} (id {status.host_id or '-'})"))
        rows.append(("Activated at", when(status.activated_at)))
    rows.append(("Client machine ID (CMID)", status.cmid or "-"))
    if status.channel == "gvlk":
        rows.append(("Renewal interval", _span(status.renewal_interval)))
        rows.append(("Retry interval", _span(status.retry_interval)))
    if status.last_attempt_at is None:
        rows.append(("Last attempt", "none yet"))
    else:
        outcome = "succeeded" if status.last_error is None else f"failed: {status.last_error}"
        via = f" via {status.last_host}" if status.last_host else ""
        rows.append(("Last attempt", f"{when(status.last_attempt_at)}: {outcome}{via}"))
    rows.append(("Next attempt", when(status.next_attempt_at)))
    if status.rearms_left is not None:
        rows.append(("Rearms left", str(status.rearms_left)))
    width = max(len(label) for label, _ in rows) + 1
    lines = [f"{(label + ':').ljust(width)} {value}" for label, value in rows]
    return [*lines, "", f"What to do: {status.advice}"]
