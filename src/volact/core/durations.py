"""Durations as whole seconds, and their human spelling (``180d``, ``7d``, ``2h``, ``15m``)."""

from __future__ import annotations

import re

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_UNITS = {"s": 1, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY}
_PATTERN = re.compile(r"^\s*(\d{1,7})\s*([smhdw]?)\s*$")


def parse_duration(text: str, *, default_unit: str = "d") -> int:
    """Parse ``"180d"``, ``"2h"``, ``"15m"``, ``"30s"``, ``"2w"``, or a bare number.

    A bare number is in ``default_unit``.

    Raises ``ValueError`` with a message fit for a user.
    """
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration (examples: 180d, 7d, 2h, 15m)")
    number, unit = match.groups()
    return int(number) * _UNITS[unit or default_unit]


def format_duration(seconds: int) -> str:
    """The shortest exact spelling: ``15552000`` → ``180d``, ``7200`` → ``2h``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0 and unit != "w":
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def humanize(seconds: int) -> str:
    """A rounded, readable span for messages: ``2 hours``, ``29 days``, ``15 minutes``."""
    seconds = abs(seconds)
    for name, size in (("day", DAY), ("hour", HOUR), ("minute", MINUTE)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {name}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
