"""Real `volact host serve` processes on 127.0.0.1: the whole story, restarts, kill -9."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .conftest import ServedHost, volact
from .helpers import GROUP, body, cmid, make_host

pytestmark = pytest.mark.slow

Serve = Callable[..., ServedHost]


def activate(url: str, n: int, **changes: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/activate", json=body(n, int(time.time()), **changes), timeout=10)


def test_a_served_host_counts_blocks_and_survives_a_restart(
    tmp_path: Path, serve_host: Serve
) -> None:
    directory = tmp_path / "host"
    make_host(directory, int(time.time()))
    served = serve_host(directory, "--rate-limit", "0")
    health = httpx.get(f"{served.url}/v1/health", timeout=10).json()
    assert health["activated"] is True and health["groups"] == [GROUP]

    for n in range(4):
        response = activate(served.url, n)
        assert response.status_code == 409
        assert response.json()["error"]["details"]["count"] == n + 1

    # Admin commands work against the store while the host runs.
    assert "blocked" in volact("host", "block", cmid(2), "--dir", str(directory)).stdout
    blocked = activate(served.url, 2)
    assert (blocked.status_code, blocked.json()["error"]["code"]) == (403, "client_blocked")

    skewed = httpx.post(
        f"{served.url}/v1/activate", json=body(7, int(time.time()) - 5 * 3600), timeout=10
    )
    assert (skewed.status_code, skewed.json()["error"]["code"]) == (409, "time_skew")

    cloned = activate(served.url, 0, fingerprint="e" * 32)
    assert cloned.json()["error"]["details"]["count"] == 3  # 0, 1 and 3; 2 is blocked
    events = json.loads(
        volact("host", "events", "--json", "--kind", "cloned_image", "--dir", str(directory)).stdout
    )
    assert [(e["kind"], e["cmid"]) for e in events] == [("cloned_image", cmid(0))]

    assert served.stop() == 0

    again = serve_host(directory, "--rate-limit", "0")
    assert activate(again.url, 4).json()["error"]["details"]["count"] == 4
    fifth = activate(again.url, 5)
    assert fifth.status_code == 200
    assert (fifth.json()["count"], fifth.json()["threshold"]) == (5, 5)
    status = json.loads(volact("host", "status", "--json", "--dir", str(directory)).stdout)
    assert status["groups"][0]["count"] == 5 and status["groups"][0]["activating"] is True
    assert status["statistics"]["by_outcome"]["time_skew"] == 1
    assert again.stop() == 0


def test_an_uncertified_host_serves_but_answers_host_not_activated(
    tmp_path: Path, serve_host: Serve
) -> None:
    directory = tmp_path / "host"
    make_host(directory, int(time.time()), certified=False)
    served = serve_host(directory)
    assert httpx.get(f"{served.url}/v1/health", timeout=10).json()["activated"] is False
    response = activate(served.url, 0)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "host_not_activated"
    assert served.stop() == 0
    log = served.stderr_path.read_text()
    assert "not certified yet" in log


async def _load(url: str, workers: int, kill_after: int, served: ServedHost) -> set[str]:
    """Activate new clients from ``workers`` concurrent clients; kill -9 the host once
    ``kill_after`` tickets were answered. Returns the CMIDs that received a ticket."""
    ticketed: set[str] = set()
    killed = asyncio.Event()
    next_client = iter(range(20 * kill_after))  # bounded: the test ends even if the host stalls

    async def worker(http: httpx.AsyncClient) -> None:
        while not killed.is_set():
            n = next(next_client, None)
            if n is None:
                return
            try:
                response = await http.post("/v1/activate", json=body(n, int(time.time())))
            except httpx.HTTPError:
                return  # the host is gone
            if response.status_code == 200:
                ticketed.add(cmid(n))
                if len(ticketed) >= kill_after and not killed.is_set():
                    killed.set()
                    served.process.kill()  # type: ignore[union-attr]

    limits = httpx.Limits(max_connections=workers)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as http:
        await asyncio.gather(*(worker(http) for _ in range(workers)))
    return ticketed


def test_no_answered_activation_is_lost_to_kill_9(tmp_path: Path, serve_host: Serve) -> None:
    directory = tmp_path / "host"
    make_host(directory, int(time.time()))
    served = serve_host(directory, "--rate-limit", "0", "--log-level", "warning")
    ticketed = asyncio.run(_load(served.url, workers=12, kill_after=300, served=served))
    assert served.process is not None and served.process.wait(timeout=10) == -9
    assert len(ticketed) >= 300

    restarted = serve_host(directory, "--log-level", "warning")
    listed = json.loads(
        volact("host", "clients", "--json", "--limit", "100000", "--dir", str(directory)).stdout
    )
    known = {entry["cmid"] for entry in listed}
    assert ticketed <= known, f"lost {len(ticketed - known)} answered activations"
    valid = {entry["cmid"] for entry in listed if entry["valid_until"] is not None}
    assert ticketed <= valid
    assert restarted.stop() == 0
