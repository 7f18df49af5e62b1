"""Two real hosts survive their PostgreSQL primary dying (issue 17, deliverable 5).

A primary and a synchronous streaming standby (tests/scaleout/replication.py); two
`volact host serve` processes given one libpq multi-host URL with
``target_session_attrs=read-write``. Clients activate without pause; the primary is killed with
SIGKILL under that load and the standby is promoted. The hosts must find the new primary by
themselves; every activation that was answered (200 with a ticket, or 409 with a count) must be
on the promoted server; in the gap the answers are ``storage_error`` (503, the one error shape),
and the hosts' logs hold no traceback. The figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.host.conftest import ServedHost
from tests.host.helpers import body, cmid

from .replication import ReplicatedPair
from .test_hosts import http_client, logs_without_tracebacks, now, start_hosts

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKERS = 8  # concurrent clients, half at each host
BEFORE_KILL = 200  # activations answered before the primary is killed
AFTER_PROMOTION = 200  # activations answered after promotion, at least half at each host
GAP_EVIDENCE = 4  # storage_error answers seen at each host before the standby is promoted
BOUND = 120.0  # seconds any phase may take on a loaded machine before the test gives up


@dataclass
class Answer:
    n: int
    host: int
    sent: float
    received: float
    status: int
    data: dict[str, object]


@dataclass
class Load:
    hosts: list[ServedHost]
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    next_n: int = 0

    async def worker(self, index: int) -> None:
        async with http_client() as http:
            while not self.stop.is_set():
                n, self.next_n = self.next_n, self.next_n + 1
                host = index % len(self.hosts)
                sent = time.monotonic()
                response = await http.post(
                    f"{self.hosts[host].url}/v1/activate", json=body(n, now())
                )
                self.answers.append(
                    Answer(n, host, sent, time.monotonic(), response.status_code, response.json())
                )

    def answered(self, *, since: float = 0.0, host: int | None = None) -> list[Answer]:
        return [
            a
            for a in self.answers
            if a.status in (200, 409) and a.sent >= since and host in (None, a.host)
        ]

    def refused(self, host: int) -> list[Answer]:
        return [a for a in self.answers if a.status == 503 and a.host == host]

    async def until(self, condition: str, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + BOUND
        while not check():
            assert time.monotonic() < deadline, f"not within {BOUND:g} s: {condition}"
            await asyncio.sleep(0.05)


@pytest.fixture
def pair() -> Iterator[ReplicatedPair]:
    made = ReplicatedPair.create()
    try:
        yield made
    finally:
        made.remove()


@pytest.mark.parametrize("outage", [0.0, 12.0, 40.0], ids=["at-once", "12s", "40s"])
async def test_hosts_survive_a_primary_killed_under_load(
    pair: ReplicatedPair, tmp_path: Path, outage: float
) -> None:
    url = pair.url(target_session_attrs="read-write", application_name="volact-failover")
    hosts = start_hosts(tmp_path, url, 2)
    load = Load(hosts)
    try:
        workers = [asyncio.create_task(load.worker(i)) for i in range(WORKERS)]
        await load.until("answers before the kill", lambda: len(load.answered()) >= BEFORE_KILL)
        killed_at = time.monotonic()
        pair.kill_primary()
        # The outage lasts ``outage`` seconds at least (a failover manager's detection time):
        # long enough, at 40 s, for the pool to give up reconnecting (RECONNECT_TIMEOUT).
        await load.until(
            "storage_error at both hosts",
            lambda: (
                all(len(load.refused(h)) >= GAP_EVIDENCE for h in range(2))
                and time.monotonic() - killed_at >= outage
            ),
        )
        promoted_at = time.monotonic()
        pair.promote()
        await load.until(
            "both hosts serving after promotion",
            lambda: all(
                len(load.answered(since=promoted_at, host=h)) >= AFTER_PROMOTION // 2
                for h in range(2)
            ),
        )
        load.stop.set()
        await asyncio.gather(*workers)
    finally:
        load.stop.set()
        for host in hosts:
            host.kill()

    # Every answer is a ticket, a count, or storage_error in the one shape; nothing else.
    assert {a.status for a in load.answers} <= {200, 409, 503}
    for answer in load.answers:
        if answer.status == 503:
            error = answer.data["error"]
            assert isinstance(error, dict) and set(error) == {"code", "message", "details"}
            assert error["code"] == "storage_error"
    # Every answered activation (a ticket or a count) is on the promoted server: none was lost,
    # and no ticket was given for a write that the standby had not confirmed.
    with psycopg.connect(pair.standby.url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        stored = {row[0] for row in conn.execute("SELECT cmid FROM clients").fetchall()}
    answered = load.answered()
    lost = [a.n for a in answered if cmid(a.n) not in stored]
    assert lost == []
    assert sum(a.status == 200 for a in answered) >= BEFORE_KILL
    logs_without_tracebacks(hosts)

    back = [
        min(a.received for a in load.answered(since=promoted_at, host=h)) - promoted_at
        for h in range(2)
    ]
    figures = {
        "answered_before_kill": len([a for a in answered if a.received < killed_at]),
        "answered_after_kill": len([a for a in answered if a.received >= killed_at]),
        "tickets_answered": sum(a.status == 200 for a in answered),
        "storage_errors": sum(a.status == 503 for a in load.answers),
        "lost": len(lost),
        "seconds_from_kill_to_promotion": round(promoted_at - killed_at, 2),
        "seconds_from_promotion_until_serving": [round(s, 2) for s in back],
        "seconds_from_kill_until_serving": [round(s + promoted_at - killed_at, 2) for s in back],
    }
    print("\nfailover figures: " + json.dumps(figures))
