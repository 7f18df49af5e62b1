"""A limit on failed sign-ins to the dashboard, per client address (pure: time is passed in).

At most :data:`MAX_FAILURES` wrong tokens from one address within :data:`WINDOW` seconds; past
that, every sign-in from that address (a right token too) is refused with ``rate_limited``
(429, ``Retry-After``) until the oldest of those failures is older than the window. A right
token forgets the address's failures. At most ``max_addresses`` addresses are remembered (the
least recently seen dropped first), so a flood of addresses cannot grow memory without bound.

The admin token is 256 random bits, so guessing it is hopeless anyway; the limit keeps a script
from hammering the sign-in form, and says so in the one error shape.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

from volact.core.errors import RateLimited

MAX_FAILURES = 10
WINDOW = 60.0
MAX_ADDRESSES = 4096


class FailedSignIns:
    """Failed sign-ins per address within a sliding window (``now``: monotonic seconds)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.pop(address, None) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, address: str, now: float) -> None:
        """Raise :class:`RateLimited` (``retry_after`` in whole seconds) when ``address`` has
        used up its failures."""
        times = self._recent(address, now)
        if times:
            self._keep(address, times)
        if len(times) >= self.max_failures:
            wait = max(1, math.ceil(times[0] + self.window - now))
            raise RateLimited(
                f"too many failed sign-ins from {address}; try again in {wait} s",
                {"retry_after": wait},
            )

    def failed(self, address: str, now: float) -> None:
        """Count a wrong token from ``address``."""
        times = self._recent(address, now)
        times.append(now)
        while len(times) > self.max_failures:  # the older ones no longer decide anything
            times.popleft()
        self._keep(address, times)

    def succeeded(self, address: str) -> None:
        """A right token: forget the failures of ``address``."""
        self._failures.pop(address, None)

    def _keep(self, address: str, times: deque[float]) -> None:
        self._failures[address] = times
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
