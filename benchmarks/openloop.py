"""An open-loop load generator: activation requests at a fixed offered rate, latency per request.

wrk is a closed loop: each connection sends its next request only when the last one was
answered, so at saturation its latencies are mostly time spent queueing behind the other
connections. This generator instead *schedules* request ``i`` at ``start + i / rate``, whether
or not earlier ones were answered, and measures each latency from that scheduled time; a
request that had to wait for a free connection, or for the server, shows that wait in its
latency (no coordinated omission). Debian's wrk has no ``-R`` option and wrk2 is not packaged,
hence this script.

It keeps up to ``--connections`` HTTP/1.1 keep-alive connections and uses an idle one for each
request (opening another when none is idle). A connection idle for longer than
``IDLE_LIMIT`` is closed rather than reused, because uvicorn closes keep-alive connections
after 5 idle seconds and a request sent on one of those would fail. Each body has a fresh
CMID, fingerprint and nonce, like ``wrk/activate.lua``. It is Python on uvloop: latencies
include up to about a millisecond of its own timer granularity and scheduling; measuring the
reference app the same way shows that floor. It prints one JSON object::

    .venv/bin/python benchmarks/openloop.py --url http://127.0.0.1:PORT --rate 1500 \\
        --duration 10 --product writer-2026 --key GVLK
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import uuid
from typing import Any

PATH = "/v1/activate"
IDLE_LIMIT = 4.0  # seconds; uvicorn's keep-alive timeout is 5


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Generator:
    def __init__(self, host: str, port: int, product: str, key: str, connections: int) -> None:
        self.host = host
        self.port = port
        self.product = product
        self.key = key
        self.max_connections = connections
        # Idle connections with the time they became idle, the most recent last.
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.opened = 0  # connections open now
        self.connects = 0  # connections opened in all
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()

    def body(self) -> bytes:
        cmid = uuid.uuid4()
        return json.dumps(
            {
                "v": 1,
                "product": self.product,
                "key": self.key,
                "cmid": str(cmid),
                "fingerprint": cmid.hex,
                "machine": f"bench-{cmid.hex[:8]}",
                "client_time": int(time.time()),
                "nonce": base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("="),
                "state": "oob_grace",
            },
            separators=(",", ":"),
        ).encode()

    async def connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            while self.idle:
                reader, writer, since = self.idle.pop()
                if time.perf_counter() - since < IDLE_LIMIT:
                    return reader, writer
                writer.close()  # the server may be closing it right now
                self.opened -= 1
            if self.opened < self.max_connections:
                self.opened += 1
                self.connects += 1
                try:
                    return await asyncio.open_connection(self.host, self.port)
                except OSError:
                    self.opened -= 1
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter

    def release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        if conn is None:
            self.opened -= 1
        else:
            self.idle.append((*conn, time.perf_counter()))
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break

    async def request(self, scheduled: float) -> None:
        body = self.body()
        conn = None
        try:
            conn = await self.connection()
            reader, writer = conn
            writer.write(self.head + b"%d\r\n\r\n" % len(body) + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.errors += 1
            if conn is not None:  # a broken connection: close it and let another be opened
                conn[1].close()
                self.release(None)
            return
        self.latencies.append(time.perf_counter() - scheduled)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.release(conn)

    async def run(self, rate: float, duration: float) -> dict[str, Any]:
        interval = 1.0 / rate
        total = int(rate * duration)
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.05
        sent = 0
        while sent < total:
            now = time.perf_counter()
            while sent < total and start + sent * interval <= now:
                task = asyncio.create_task(self.request(start + sent * interval))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            if sent < total:
                await asyncio.sleep(max(0.0, start + sent * interval - time.perf_counter()))
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        elapsed = time.perf_counter() - start
        for _, writer, _ in self.idle:
            writer.close()
        ordered = sorted(self.latencies)
        ms = 1000.0
        return {
            "offered_rate": rate,
            "duration_s": duration,
            "scheduled": total,
            "completed": len(ordered),
            "achieved_rate": round(len(ordered) / elapsed, 1),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "errors": self.errors,
            "connections_opened": self.connects,
            "latency_ms": {
                "p50": round(percentile(ordered, 0.50) * ms, 3),
                "p90": round(percentile(ordered, 0.90) * ms, 3),
                "p99": round(percentile(ordered, 0.99) * ms, 3),
                "p999": round(percentile(ordered, 0.999) * ms, 3),
                "max": round(ordered[-1] * ms, 3) if ordered else 0.0,
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="http://IP:PORT of the server")
    parser.add_argument("--rate", type=float, required=True, help="requests a second offered")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64, help="at most this many")
    parser.add_argument("--product", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    host, port = args.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    generator = Generator(host, int(port), args.product, args.key, args.connections)
    try:
        import uvloop

        result = uvloop.run(generator.run(args.rate, args.duration))
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        result = asyncio.run(generator.run(args.rate, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
