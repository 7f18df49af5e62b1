"""The host's publishing loop, publishing into a real BIND 9 server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.dns.bind import BindServer
from volact.core.host_machine import Event
from volact.core.srv import SRVRecord
from volact.host.publisher import SRVPublisher
from volact.net.dns import TSIGKey, query_srv

pytestmark = pytest.mark.dns

NAME = "_volact._tcp.volact.test"
NOW = 1_700_000_000


async def until(condition: Callable[[], bool], what: str, limit: float = 15.0) -> None:
    """Poll ``condition`` (bounded): the loop under test runs in the same event loop."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.01)


def publisher(bind: BindServer, port: int, events: list[Event], **kwargs: Any) -> SRVPublisher:
    options: dict[str, Any] = {
        "target": "localhost",
        "port": port,
        "server": bind.server,
        "key": bind.key,
        "on_event": events.append,
        "clock": lambda: NOW,
        "timeout": 5.0,
    }
    options.update(kwargs)
    domains = options.pop("domains", ["volact.test"])
    return SRVPublisher(domains, **options)


def srv_records(bind: BindServer) -> list[SRVRecord]:
    return list(query_srv(NAME, server=bind.server, timeout=2).records)


async def test_two_hosts_publish_and_stop_cleanly(bind: BindServer) -> None:
    events: list[Event] = []
    first = publisher(bind, 17001, events, priority=0, weight=1)
    second = publisher(bind, 17002, events, priority=0, weight=3)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in (first, second)]
    await until(lambda: len(events) == 2, "both hosts publish once")
    assert {e.kind for e in events} == {"dns_published"}
    assert {e.details["port"] for e in events} == {17001, 17002}
    assert all(e.at == NOW and e.details["domain"] == "volact.test" for e in events)
    assert first.last_result["volact.test"].ok
    assert srv_records(bind) == [
        SRVRecord(0, 1, 17001, "localhost"),
        SRVRecord(0, 3, 17002, "localhost"),
    ]
    stop.set()
    await asyncio.gather(*tasks)
    assert srv_records(bind) != []  # Withdrawing at stop is off by default.


async def test_republishes_every_interval(bind: BindServer) -> None:
    events: list[Event] = []
    host = publisher(bind, 17001, events, interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    await until(lambda: srv_records(bind) != [], "the first publication")
    bind.clear_srv(NAME, "volact.test")  # An admin (or a zone reload) lost the record.
    await until(lambda: srv_records(bind) != [], "the record to be published again")
    stop.set()
    await task
    assert srv_records(bind) == [SRVRecord(0, 0, 17001, "localhost")]  # Never duplicated.


async def test_wrong_key_is_an_event_and_the_loop_keeps_running(bind: BindServer) -> None:
    events: list[Event] = []
    wrong = TSIGKey(bind.key.name, bind.key.algorithm, "d3Jvbmcgc2VjcmV0IQ==")
    host = publisher(bind, 17001, events, key=wrong, retry_interval=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    await until(lambda: len(events) >= 3, "three failed attempts")
    assert not task.done()
    stop.set()
    await task  # run() returns normally: a failure never stops the host.
    failed = events[0]
    assert failed.kind == "dns_publish_failed"
    assert failed.details["domain"] == "volact.test"
    assert failed.details["reason"] == "badsig"
    assert "BADSIG" in failed.details["error"]
    assert wrong.secret not in str(failed.details)
    result = host.last_result["volact.test"]
    assert (result.ok, result.reason) == (False, "badsig")
    assert srv_records(bind) == []


async def test_one_failing_domain_does_not_stop_the_others(bind: BindServer) -> None:
    events: list[Event] = []
    host = publisher(bind, 17001, events, domains=["static.test", "volact.test"])
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    await until(lambda: len(host.last_result) == 2, "both domains tried")
    stop.set()
    await task
    assert host.last_result["static.test"].reason == "refused"
    assert host.last_result["volact.test"].ok
    assert srv_records(bind) == [SRVRecord(0, 0, 17001, "localhost")]


async def test_withdraw_on_stop_removes_only_this_host(bind: BindServer) -> None:
    events: list[Event] = []
    stop = asyncio.Event()
    staying = publisher(bind, 17002, events)
    leaving = publisher(bind, 17001, events, withdraw_on_stop=True)
    stop_staying = asyncio.Event()
    staying_task = asyncio.create_task(staying.run(stop_staying))
    task = asyncio.create_task(leaving.run(stop))
    await until(lambda: len(srv_records(bind)) == 2, "both records published")
    stop.set()
    await task
    assert srv_records(bind) == [SRVRecord(0, 0, 17002, "localhost")]
    stop_staying.set()
    await staying_task


async def test_publishing_runs_off_the_event_loop() -> None:
    """A slow DNS server must not stall the host: publishing runs in a worker thread."""
    release = threading.Event()
    entered = threading.Event()

    def slow_publish(domain: str, **_: Any) -> None:
        entered.set()
        release.wait(timeout=30)

    events: list[Event] = []
    host = SRVPublisher(
        ["corp.example"],
        target="kms1.corp.example",
        port=7688,
        server=None,  # type: ignore[arg-type]  # Never used by the fake publish.
        key=None,  # type: ignore[arg-type]
        on_event=events.append,
        clock=lambda: NOW,
        publish=slow_publish,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    await until(entered.is_set, "publishing started")
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0)
        ticks += 1
    assert ticks == 5 and not events  # The loop turns while publishing is still blocked.
    release.set()
    await until(lambda: bool(events), "publishing finished")
    stop.set()
    await task
    assert events[0].kind == "dns_published"


async def test_unexpected_errors_and_a_broken_event_log_do_not_escape() -> None:
    def broken_publish(domain: str, **_: Any) -> None:
        raise ValueError("a malformed answer")

    def broken_event_log(event: Event) -> None:
        raise OSError("disk full")

    host = SRVPublisher(
        ["corp.example"],
        target="kms1.corp.example",
        port=7688,
        server=None,  # type: ignore[arg-type]
        key=None,  # type: ignore[arg-type]
        on_event=broken_event_log,
        clock=lambda: NOW,
        publish=broken_publish,
        retry_interval=0.01,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    await until(lambda: "corp.example" in host.last_result, "one attempt")
    stop.set()
    await task
    result = host.last_result["corp.example"]
    assert (result.ok, result.reason, result.error) == (False, "error", "a malformed answer")
