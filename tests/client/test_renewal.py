"""The renewal loop: a thread and an asyncio task over a settable clock and in-process hosts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from tests.factories import T0
from volact.client import Attempt, License, State
from volact.client.renewal import MIN_RETRY_GAP, RenewalLoop, RenewalThread
from volact.core.durations import DAY, HOUR

from .conftest import World

WAIT = 30.0  # the longest any condition below may take (it is polled, never slept)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def rounds_pass(loop: RenewalLoop, count: int = 2) -> None:
    """Wait until ``count`` more rounds of the loop have started (so one full round ran after
    whatever the caller changed)."""
    start = loop.rounds
    wait_until(lambda: loop.rounds >= start + count, f"{count} rounds")


def installed(world: World, name: str = "pc1") -> License:
    world.add_host("h1:7688", threshold=1)
    lic = world.machine(name)
    lic.install_key()
    lic.configure(manual_host="h1")
    return lic


def test_the_thread_activates_renews_retries_and_recovers(world: World) -> None:
    lic = installed(world)
    attempts: list[Attempt] = []
    handle = lic.start_renewal(wake_interval=0.01, on_attempt=attempts.append)
    try:
        wait_until(lambda: len(attempts) == 1, "the first activation")
        assert attempts[0].ok and lic.status().state is State.LICENSED

        world.clock.now = T0 + 7 * DAY  # the renewal interval
        wait_until(lambda: len(attempts) == 2, "the renewal")
        assert attempts[1].ok

        world.network.down.add("h1:7688")  # the host goes away
        world.clock.now = T0 + 14 * DAY
        wait_until(lambda: len(attempts) == 3, "the failed renewal")
        assert attempts[2].error is not None and attempts[2].error.code == "host_unreachable"

        world.clock.now = T0 + 14 * DAY + HOUR  # before the retry interval (2 hours)
        rounds_pass(handle.loop)
        assert len(attempts) == 3

        world.network.down.clear()  # the host is back
        world.clock.now = T0 + 14 * DAY + 2 * HOUR
        wait_until(lambda: len(attempts) == 4, "the retry")
        assert attempts[3].ok
    finally:
        assert handle.stop()
    assert not handle.running
    assert [attempt.at - T0 for attempt in attempts] == [0, 7 * DAY, 14 * DAY, 14 * DAY + 2 * HOUR]
    status = lic.status()
    assert status.valid_until is not None
    assert status.valid_until.timestamp() == T0 + 14 * DAY + 2 * HOUR + 180 * DAY


def test_a_failing_product_is_not_retried_before_the_retry_interval(world: World) -> None:
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="nowhere")
    attempts: list[Attempt] = []
    loop = RenewalLoop(
        lambda: [lic], clock=world.clock, wake_interval=60, on_attempt=attempts.append
    )
    assert loop.step() == 60  # one attempt (it never tried), then sleep a whole wake interval
    for _ in range(5):
        assert loop.step() == 60
    assert len(attempts) == 1 and attempts[0].error is not None
    world.clock.now = T0 + 2 * HOUR - 30
    assert loop.step() == 30  # wakes exactly at the retry
    world.clock.now = T0 + 2 * HOUR
    loop.step()
    assert len(attempts) == 2


def test_an_attempt_that_cannot_be_recorded_is_not_repeated_at_once(world: World) -> None:
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="nowhere")
    errors: list[str] = []

    def broken_renew() -> Attempt:
        from volact.core.errors import StorageError

        raise StorageError("disk full")

    lic.renew = broken_renew  # type: ignore[method-assign]
    loop = RenewalLoop(
        lambda: [lic],
        clock=world.clock,
        wake_interval=60,
        on_error=lambda product, error: errors.append(error.code),
    )
    for _ in range(3):
        loop.step()
    assert errors == ["storage_error"]  # tried once, reported once
    world.clock.now = T0 + MIN_RETRY_GAP
    loop.step()
    assert loop.rounds == 4


def test_stop_ends_a_long_sleep_promptly(world: World) -> None:
    lic = installed(world)
    handle = lic.start_renewal(wake_interval=3600)
    wait_until(lambda: lic.status().state is State.LICENSED, "the activation")
    assert handle.running
    assert handle.stop(timeout=WAIT)  # the sleep is an hour; stop does not wait for it
    assert not handle.running


def test_a_permanent_activation_is_never_renewed(world: World) -> None:
    lic = installed(world)
    lic.activate()
    loop = RenewalLoop(lambda: [lic], clock=world.clock, wake_interval=5)
    world.clock.now = T0 + 7 * DAY
    loop.step()
    assert loop.attempts == 1  # a host activation is renewed
    assert lic.next_attempt_at() == T0 + 14 * DAY


async def test_the_asyncio_task_activates_and_cancels_cleanly(world: World) -> None:
    lic = installed(world)
    attempts: list[Attempt] = []
    task = lic.renewal_task(wake_interval=0.01, on_attempt=attempts.append)
    deadline = time.monotonic() + WAIT
    while not attempts and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert attempts and attempts[0].ok
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lic.status().state is State.LICENSED


async def test_run_renewal_stops_on_its_event(world: World) -> None:
    lic = installed(world)
    stop = asyncio.Event()
    done = threading.Event()

    def on_attempt(attempt: Attempt) -> None:
        done.set()

    runner = asyncio.create_task(lic.run_renewal(wake_interval=3600, on_attempt=on_attempt))
    deadline = time.monotonic() + WAIT
    while not done.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    stop.set()
    runner.cancel()  # run_renewal(stop=…) is the alternative; both end it
    with pytest.raises(asyncio.CancelledError):
        await runner
    second = asyncio.create_task(lic.run_renewal(wake_interval=3600, stop=stop))
    await asyncio.wait_for(second, timeout=WAIT)  # the stop event is already set: returns


def test_the_handle_is_a_context_manager(world: World) -> None:
    lic = installed(world)
    with lic.start_renewal(wake_interval=0.01) as handle:
        assert isinstance(handle, RenewalThread)
        wait_until(lambda: lic.status().state is State.LICENSED, "the activation")
    assert not handle.running


class FakeRenewable:
    """The least a product must offer the loop (the ``Renewable`` protocol): no License."""

    product = "writer-2026"

    def __init__(self, lic: License) -> None:
        self.lic = lic
        self.renewals = 0

    def next_attempt_at(self) -> int | None:
        return self.lic.next_attempt_at()

    def renew(self) -> Attempt:
        self.renewals += 1
        return self.lic.renew()


def test_the_loop_needs_only_the_renewable_protocol(world: World) -> None:
    product = FakeRenewable(installed(world))
    loop = RenewalLoop(lambda: [product], clock=world.clock, wake_interval=60.0)
    loop.step()
    assert (product.renewals, loop.attempts) == (1, 1)
    loop.step()  # licensed: the renewal is a week away
    assert product.renewals == 1
