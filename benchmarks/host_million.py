"""Benchmark: a host with 1,000,000 known clients (SPEC §12).

Targets: count lookups O(1), restart ≤ 10 s, RSS ≤ 300 MB. It prints figures and never asserts
a time limit.

1. **Fill.** The store's own migrations create the database (``SQLiteStore.open()``, so the
   schema, indexes and WAL mode are exactly the host's). The clients are then written straight
   into that schema with ``sqlite3`` ``executemany`` in one transaction, with the fill
   connection's ``synchronous`` off: a setup shortcut, not the host's write path (through the
   host it would take ~10 minutes at a few thousand activations a second). The 1,000,000 clients
   are random CMIDs in one product group (the worst case for a count), last seen at random
   times over the last 45 days (about two thirds inside the 30-day count window), plus 100,000
   events (the event retention's maximum).
2. **Restart.** ``volact host serve`` is started on the filled database, ``--restarts`` times:
   from process start to ``/v1/health`` answering and to the first activation answered.
3. **Memory.** VmRSS (and its peak, VmHWM) of the serving process from ``/proc/PID/status``
   after ``--requests`` sequential activations of new clients.
4. **Lookup cost.** The median latency of ``--requests`` sequential activations (one
   keep-alive connection) with 1,000,000 clients and with none; each includes its commit's
   fsync. And the per-request SQL on its own: the client lookup and the capped count (what a
   request runs) and the exact count (what ``volact host status`` runs), timed in-process on
   both databases.

Run::

    .venv/bin/python benchmarks/host_million.py [--clients 1000000] [--requests 500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import GROUP, PRODUCT, Machine, Server, activation_body, host_server, make_host_dir

from volact.core.policy import COUNT_WINDOW
from volact.store import SQLiteStore
from volact.store.base import count_limit_for
from volact.store.sqlite_queries import COUNT_EXACT, COUNT_LIMITED, SELECT_CLIENT

THRESHOLD = 5
EVENTS = 100_000
DAY = 86400
RESTART_TARGET_S = 10.0
RSS_TARGET_MB = 300.0


def client_rows(count: int, now: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for _ in range(count):
        cmid = uuid.UUID(int=rng.getrandbits(128), version=4)
        seen = now - rng.randrange(45 * DAY)
        yield (
            str(cmid),
            GROUP,
            PRODUCT,
            cmid.hex,
            f"pc-{cmid.hex[:10]}.corp.example",
            "licensed",
            0,
            seen - rng.randrange(365 * DAY),
            seen,
            seen + 180 * DAY,
        )


def event_rows(count: int, now: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for index in range(count):
        at = now - (count - index) * 30
        details = json.dumps(
            {
                "outcome": "activated",
                "product": PRODUCT,
                "machine": f"pc-{index}.corp.example",
                "count": 10,
                "threshold": THRESHOLD,
                "state": "licensed",
                "address": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            }
        )
        yield (at, "activation_request", str(uuid.UUID(int=rng.getrandbits(128))), GROUP, details)


def create_and_fill(path: Path, clients: int, events: int) -> float:
    """Create the database with the store's migrations, then fill it; returns the seconds."""

    async def migrate() -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    if not clients:
        return 0.0
    started = time.perf_counter()
    now = int(time.time())
    rng = random.Random(1)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # this connection only: a setup shortcut
        conn.execute("PRAGMA cache_size = -262144")  # 256 MiB for the index build
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO clients (cmid, group_id, product, fingerprint, machine, state, blocked, "
            "first_seen, last_seen, valid_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            client_rows(clients, now, rng),
        )
        conn.executemany(
            "INSERT INTO events (at, kind, cmid, group_id, details) VALUES (?, ?, ?, ?, ?)",
            event_rows(events, now, rng),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def database_bytes(path: Path) -> int:
    return sum(
        os.path.getsize(f"{path}{suffix}")
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(f"{path}{suffix}")
    )


def memory_kib(pid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


class Client:
    """Sequential activations over one keep-alive connection."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def activate(self) -> tuple[int, float]:
        body = json.dumps(activation_body()).encode()
        started = time.perf_counter()
        self.connection.request(
            "POST", "/v1/activate", body=body, headers={"Content-Type": "application/json"}
        )
        response = self.connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def health(self) -> int:
        self.connection.request("GET", "/v1/health")
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


def restart(directory: Path, database: Path, log_path: Path) -> dict[str, float]:
    """Start the host; seconds from process start to health answered and first activation."""
    server = host_server(directory, log_path, database_url=f"sqlite:///{database}")
    started = time.perf_counter()
    server.start()
    ready = time.perf_counter() - started
    client = Client(server.url)
    try:
        if client.health() != 200:
            raise RuntimeError("health did not answer 200")
        health = time.perf_counter() - started
        status, _ = client.activate()
        first = time.perf_counter() - started
        if status not in (200, 409):
            raise RuntimeError(f"the first activation got {status}:\n{server.log_tail()}")
    finally:
        client.close()
        server.stop()
    return {"ready_line_s": ready, "health_s": health, "first_activation_s": first}


def serve_and_measure(
    directory: Path, database: Path, log_path: Path, requests: int
) -> dict[str, Any]:
    """Sequential activations against a running host: latency median, then its memory."""
    server: Server = host_server(directory, log_path, database_url=f"sqlite:///{database}")
    server.start()
    client = Client(server.url)
    try:
        for _ in range(20):  # warm-up: imports, prepared statements, page cache
            client.activate()
        latencies = []
        statuses: dict[int, int] = {}
        for _ in range(requests):
            status, seconds = client.activate()
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append(seconds)
        memory = memory_kib(server.pid)
    finally:
        client.close()
        server.stop()
    latencies.sort()
    return {
        "requests": requests,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "median_ms": round(statistics.median(latencies) * 1000, 3),
        "p90_ms": round(latencies[int(0.9 * len(latencies))] * 1000, 3),
        "rss_mb": round(memory["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(memory["VmHWM"] / 1024, 1),
    }


def sql_costs(database: Path, repeat: int = 2000) -> dict[str, float]:
    """Median microseconds of the per-request queries (and the exact count) on ``database``."""
    now = int(time.time())
    cutoff = now - COUNT_WINDOW
    limit = count_limit_for(THRESHOLD)
    conn = sqlite3.connect(database)
    try:
        cmids = [row[0] for row in conn.execute("SELECT cmid FROM clients LIMIT 1000")]
        cmids = cmids or [str(uuid.uuid4())]

        def timed(sql: str, params: Any, times: int) -> float:
            samples = []
            for index in range(times):
                arguments = params(index) if callable(params) else params
                started = time.perf_counter()
                conn.execute(sql, arguments).fetchall()
                samples.append(time.perf_counter() - started)
            return round(statistics.median(samples) * 1e6, 1)

        return {
            "client_lookup_us": timed(
                SELECT_CLIENT, lambda i: (cmids[i % len(cmids)], GROUP), repeat
            ),
            "capped_count_us": timed(COUNT_LIMITED, (GROUP, cutoff, limit), repeat),
            "exact_count_us": timed(COUNT_EXACT, (GROUP, cutoff), 5),
            "counted_clients": conn.execute(COUNT_EXACT, (GROUP, cutoff)).fetchone()[0],
        }
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    machine = Machine.here()
    directory = Path(tempfile.mkdtemp(prefix="volact-million-"))
    try:
        files = make_host_dir(directory / "host", threshold=THRESHOLD)
        big, empty = directory / "million.db", directory / "empty.db"
        say(f"filling {args.clients:,} clients and {EVENTS:,} events …")
        fill_s = create_and_fill(big, args.clients, EVENTS)
        create_and_fill(empty, 0, 0)
        size = database_bytes(big)
        say(f"filled in {fill_s:.1f} s; database {size / 1e6:.0f} MB")

        restarts = [
            restart(files.directory, big, directory / "restart.log") for _ in range(args.restarts)
        ]
        for figures in restarts:
            say(
                "restart: ready line {ready_line_s:.2f} s, health {health_s:.2f} s, first "
                "activation {first_activation_s:.2f} s".format(**figures)
            )
        with_million = serve_and_measure(
            files.directory, big, directory / "million.log", args.requests
        )
        with_none = serve_and_measure(
            files.directory, empty, directory / "empty.log", args.requests
        )
        sql_million, sql_empty = sql_costs(big), sql_costs(empty)
        result: dict[str, Any] = {
            "machine": machine.__dict__,
            "clients": args.clients,
            "events": EVENTS,
            "fill_s": round(fill_s, 1),
            "database_mb": round(size / 1e6, 1),
            "restart": {
                "runs": [{k: round(v, 3) for k, v in r.items()} for r in restarts],
                "median_first_activation_s": round(
                    statistics.median(r["first_activation_s"] for r in restarts), 3
                ),
                "target_s": RESTART_TARGET_S,
            },
            "with_million": with_million,
            "with_none": with_none,
            "sql_us": {"million": sql_million, "none": sql_empty},
            "rss_target_mb": RSS_TARGET_MB,
        }
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    restart_s = result["restart"]["median_first_activation_s"]
    print()
    print(f"Machine: {Machine(**result['machine']).describe()}")
    print(
        f"Database: {args.clients:,} clients, {EVENTS:,} events, {result['database_mb']:.0f} MB "
        f"(filled in {result['fill_s']:.0f} s)"
    )
    print(
        f"Restart to first activation (median of {args.restarts}): {restart_s:.2f} s "
        f"({'within' if restart_s <= RESTART_TARGET_S else 'over'} {RESTART_TARGET_S:g} s)"
    )
    rss = with_million["rss_mb"]
    print(
        f"RSS after {args.requests} activations: {rss:.0f} MB "
        f"(peak {with_million['peak_rss_mb']:.0f} MB; "
        f"{'within' if rss <= RSS_TARGET_MB else 'over'} {RSS_TARGET_MB:g} MB); "
        f"with no clients: {with_none['rss_mb']:.0f} MB"
    )
    print(
        f"Sequential activation, median (p90): {with_million['median_ms']:.2f} "
        f"({with_million['p90_ms']:.2f}) ms with {args.clients:,} clients, "
        f"{with_none['median_ms']:.2f} ({with_none['p90_ms']:.2f}) ms with none; "
        f"statuses {with_million['statuses']} / {with_none['statuses']}"
    )
    for label, key in (
        ("client lookup", "client_lookup_us"),
        ("capped count (per request)", "capped_count_us"),
        ("exact count (host status)", "exact_count_us"),
    ):
        print(
            f"SQL {label}: {sql_million[key]:.1f} us with {args.clients:,} clients, "
            f"{sql_empty[key]:.1f} us with none"
        )


if __name__ == "__main__":
    main()
