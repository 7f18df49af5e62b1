"""The renewal loop: activate and renew at the times the client machine decides (SPEC §3).

One loop serves one or more products. Each round it asks every product when it should next try
(:func:`~volact.core.client_machine.next_deadline`: the renewal interval after a success, the
retry interval after a failure, at once if it never tried), makes the attempts that are due, and
sleeps until the earliest deadline — but never longer than ``wake_interval`` (default one
minute), so a wall clock that jumps (a suspended laptop, an NTP step, ``faketime`` in the tests)
or a state file changed by another process is noticed within that time.

It never busy-loops: after an attempt, the same product is not tried again for at least
:data:`MIN_RETRY_GAP` (15 minutes, the lowest interval SPEC §3 allows), even if its state file
could not be written. It stops promptly: a stop request ends the sleep at once, and an attempt
in progress is bounded by the transport's and the DNS resolver's time-outs.

Three ways to run it:

* :class:`RenewalThread` — a daemon thread (``License.start_renewal()``), ``stop()`` to end it;
* :func:`run_async` — a coroutine for asyncio apps (``License.run_renewal()``); the blocking
  attempt runs in a worker thread, and cancelling the task stops the loop;
* :meth:`RenewalLoop.run` — in the calling thread (``volact client run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from volact.core.errors import VolactError
from volact.core.policy import INTERVAL_BOUNDS

if TYPE_CHECKING:
    from volact.client.activation import Attempt
    from volact.clock import Clock

__all__ = [
    "DEFAULT_WAKE_INTERVAL",
    "MIN_RETRY_GAP",
    "Renewable",
    "RenewalLoop",
    "RenewalThread",
    "run_async",
]

log = logging.getLogger("volact.client.renewal")

DEFAULT_WAKE_INTERVAL = 60.0
MIN_RETRY_GAP = INTERVAL_BOUNDS[0]
# The shortest sleep between rounds (seconds): a floor against rounding to zero.
_MIN_SLEEP = 0.01

OnAttempt = Callable[["Attempt"], None]


class Renewable(Protocol):
    """What the loop needs of a product's license (``volact.client.License`` is one)."""

    @property
    def product(self) -> str: ...

    def next_attempt_at(self) -> int | None:
        """When (Unix seconds) to try next; None: never."""
        ...

    def renew(self) -> Attempt:
        """One recorded attempt; its outcome is returned, not raised."""
        ...


OnError = Callable[[str, VolactError], None]


def _log_attempt(attempt: Attempt) -> None:
    if attempt.error is None:
        log.info("%s: activated by %s", attempt.product, attempt.host)
    else:
        log.warning("%s: %s: %s", attempt.product, attempt.error.code, attempt.error.message)


def _log_error(product: str, error: VolactError) -> None:
    log.error("%s: %s: %s", product, error.code, error.message)


class RenewalLoop:
    """The loop's logic, independent of how it sleeps (thread, asyncio or foreground)."""

    def __init__(
        self,
        licenses: Callable[[], Sequence[Renewable]],
        *,
        clock: Clock,
        wake_interval: float = DEFAULT_WAKE_INTERVAL,
        on_attempt: OnAttempt | None = None,
        on_error: OnError | None = None,
    ) -> None:
        if wake_interval <= 0:
            raise ValueError("wake_interval must be positive")
        self.licenses = licenses
        self.clock = clock
        self.wake_interval = wake_interval
        self.on_attempt = on_attempt or _log_attempt
        self.on_error = on_error or _log_error
        self.attempts = 0
        self.rounds = 0
        self._not_before: dict[str, int] = {}
        self._reported: dict[str, str] = {}

    def _due_at(self, license: Renewable, now: int) -> int | None:
        due = license.next_attempt_at()
        if due is None:
            return None
        floor = self._not_before.get(license.product)
        if floor is not None:
            if now < floor - MIN_RETRY_GAP:
                # The clock went backwards past the last attempt: the floor means nothing now.
                del self._not_before[license.product]
            else:
                due = max(due, floor)
        return due

    def step(self) -> float:
        """Make the attempts that are due; return how long to sleep (seconds) before the next
        round. Errors reading a product's state are reported (once per distinct error) and
        do not stop the loop."""
        sleep = self.wake_interval
        self.rounds += 1
        try:
            licenses = self.licenses()
        except VolactError as error:
            self.on_error("*", error)
            return sleep
        for license in licenses:
            product = license.product
            try:
                now = self.clock()
                due = self._due_at(license, now)
                if due is not None and due <= now:
                    # Set before the attempt, so an attempt that raises is not repeated at once.
                    self._not_before[product] = now + MIN_RETRY_GAP
                    attempt = license.renew()
                    self.attempts += 1
                    self._not_before[product] = attempt.at + MIN_RETRY_GAP
                    self.on_attempt(attempt)
                    now = self.clock()
                    due = self._due_at(license, now)
                self._reported.pop(product, None)
            except VolactError as error:
                if self._reported.get(product) != error.message:
                    self._reported[product] = error.message
                    self.on_error(product, error)
                continue
            if due is not None:
                sleep = min(sleep, float(max(due - now, 0)))
        return max(sleep, _MIN_SLEEP)

    def run(self, stop: threading.Event) -> None:
        """Run rounds in this thread until ``stop`` is set."""
        while not stop.is_set():
            stop.wait(self.step())


class RenewalThread:
    """A renewal loop in a daemon thread; returned by ``License.start_renewal()``."""

    def __init__(self, loop: RenewalLoop, *, name: str = "volact-renewal") -> None:
        self.loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.loop.run(self._stop)
        except BaseException as error:  # reported to the owner through .error and the log
            self.error = error
            log.exception("the renewal loop stopped on an unexpected error")

    def start(self) -> RenewalThread:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Ask the loop to stop and wait for it (at most ``timeout`` seconds: an attempt in
        progress finishes first). Returns whether it has stopped."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> RenewalThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def run_async(loop: RenewalLoop, stop: asyncio.Event | None = None) -> None:
    """Run the loop on the running event loop until ``stop`` is set or the task is cancelled.

    Each round runs in a worker thread (attempts block on the network); the event loop only
    waits.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        sleep = await asyncio.to_thread(loop.step)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=sleep)
