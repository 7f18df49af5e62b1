"""``volact client diagnose``: one activation attempt that explains itself.

:func:`diagnose` makes a recorded attempt (:func:`volact.client.activation.attempt`) that
queries every DNS name before trying a host, so the trace shows the whole discovery, and turns
its outcome into a one-line verdict with the remedy of the error's code (``volact explain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from volact.client.activation import Attempt, LicenseParts, attempt
from volact.client.status import iso
from volact.core.errors import CODES

__all__ = ["Diagnosis", "diagnose"]


@dataclass(frozen=True)
class Diagnosis:
    """What ``volact client diagnose`` shows: the trace, the outcome and a one-line verdict."""

    attempt: Attempt
    lines: list[str]
    verdict: str

    @property
    def ok(self) -> bool:
        return self.attempt.ok

    def to_dict(self) -> dict[str, Any]:
        error = self.attempt.error
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "error": None if error is None else error.to_dict(),
            "trace": None if self.attempt.trace is None else self.attempt.trace.to_dict(),
            "lines": self.lines,
            "status": self.attempt.status.to_dict(),
        }


def diagnose(lic: LicenseParts, *, vendor_url: str | None = None) -> Diagnosis:
    """Activate now, querying every DNS name and recording every host tried, and explain."""
    done = attempt(lic, vendor_url=vendor_url, eager=True)
    lines = [] if done.trace is None else done.trace.lines()
    if done.error is None:
        status = done.status
        until = "permanently" if status.valid_until is None else f"until {iso(status.valid_until)}"
        verdict = f"OK: activated by {done.host}, licensed {until}"
    else:
        info = CODES.get(done.error.code)
        remedy = f" Remedy: {info.remedy}" if info is not None else ""
        verdict = f"FAILED: {done.error.code}: {done.error.message}.{remedy}"
    return Diagnosis(done, lines, verdict)
