"""The one clock of the edges: whole Unix seconds. The core never reads it; callers pass ``now``."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def system_clock() -> int:
    """The system's clock in whole Unix seconds (the default clock of every service)."""
    return int(time.time())
