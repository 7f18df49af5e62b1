"""Benchmark: host throughput and latency against a minimal Starlette app (SPEC §12).

Target: ``volact host serve`` (SQLite, one process, 64 connections, every client new, so a
write and a signature per request) reaches at least 40% of the requests a second of a minimal
Starlette+uvicorn JSON POST endpoint (``reference_app.py``) measured on the same machine in the
same run, with a p99 latency of at most 10 ms. It prints figures and ratios and never asserts a
time limit.

What it does:

1. Makes a certified host directory in a temporary directory, with threshold 1 (every request is
   activated and gets a signed ticket), and checks one ticket's signature against the host key.
2. Starts ``volact host serve --rate-limit 0 --bind 127.0.0.1`` (``--hosts N`` processes on one
   database) and the reference app, both under the host's uvicorn settings.
3. Drives each with wrk (``wrk/activate.lua``: a fresh CMID and nonce per request; the reference
   gets the same bodies) at ``--connections`` connections, with ONE wrk thread: the machine's
   cores are shared by wrk and the server. A warm-up first, then ``--rounds`` rounds of a host
   run and a reference run, alternating; it reports medians.
4. After each host run, counts the clients in the store: the new ones must be the 2xx answers
   wrk counted, plus at most one per connection (requests in flight when wrk stopped: wrk does
   not count them, the host still answers and stores them). Non-2xx answers must be zero.
5. At saturation a closed loop's p99 is mostly queueing (64 connections / throughput), so it
   also offers fixed rates with ``openloop.py`` (an open loop, up to the same number of
   connections) and reports those latencies too, for both servers. By default the rates are a
   quarter and a half of the host's median closed-loop throughput (half the *reference's*
   would overload a host that reaches less than half of it); ``--open-rate`` sets them.

Run (see docs/benchmarks.md)::

    .venv/bin/python benchmarks/host_throughput.py [--duration 10] [--connections 64]
        [--rounds 3] [--db URL] [--hosts N] [--open-rate R[,R…]|0] [--json]

``--db postgresql://postgres@127.0.0.1:5432/test`` measures the PostgreSQL store: the runner
creates a fresh database on that server for the run and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from common import (
    BENCHMARKS,
    GVLK,
    PRODUCT,
    Machine,
    Server,
    activation_body,
    host_server,
    make_host_dir,
    post_json,
    reference_server,
    wrk_command,
    wrk_figures,
)

from volact import crypto
from volact.store import open_store

TARGET_RATIO = 0.40
OPEN_LOOP_FRACTIONS = (0.25, 0.5)
TARGET_P99_MS = 10.0
SETTLE_TIMEOUT = 30.0


@dataclass
class Run:
    """One wrk run against one server (summed over its wrk processes)."""

    server: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    server_cpu_percent: float
    server_cpu_us_per_request: float
    wrk_cpu_percent: float
    stored_clients: int | None = None
    in_flight: int | None = None
    per_process: list[dict[str, Any]] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(servers: list[Server], connections: int, duration: float, seed: int, *, label: str) -> Run:
    """Drive every server with its own wrk (1 thread) at once; sum the figures."""
    per_server = max(1, connections // len(servers))
    cpu_before = [cpu_seconds(s.pid) for s in servers]
    wrk_before = children_cpu()
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            wrk_command(
                server.url,
                per_server,
                duration,
                seed * 100 + index,
                ("--latency", "--timeout", "10s"),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, server in enumerate(servers)
    ]
    outputs = [process.communicate(timeout=duration + 120) for process in processes]
    elapsed = time.perf_counter() - started
    wrk_cpu = children_cpu() - wrk_before
    server_cpu = sum(
        cpu_seconds(s.pid) - before for s, before in zip(servers, cpu_before, strict=True)
    )
    results = []
    for (out, err), process in zip(outputs, processes, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"wrk failed ({process.returncode}):\n{out}\n{err}")
        results.append(wrk_figures(out, err))
    requests = sum(r["requests"] for r in results)
    rate = sum(r["requests"] / (r["duration_us"] / 1e6) for r in results)
    errors = [r["errors"] for r in results]
    return Run(
        server=label,
        requests_per_second=round(rate, 1),
        # With several wrk processes: the median of their p50s and the worst of their p99s.
        p50_ms=round(statistics.median(r["latency_us"]["p50"] for r in results) / 1000, 2),
        p99_ms=round(max(r["latency_us"]["p99"] for r in results) / 1000, 2),
        requests=requests,
        non_2xx=sum(e["status"] for e in errors),
        socket_errors=sum(e["connect"] + e["read"] + e["write"] + e["timeout"] for e in errors),
        server_cpu_percent=round(100 * server_cpu / elapsed, 1),
        server_cpu_us_per_request=round(server_cpu / max(requests, 1) * 1e6, 1),
        wrk_cpu_percent=round(100 * wrk_cpu / elapsed, 1),
        per_process=[
            {
                "requests": r["requests"],
                "p50_ms": r["latency_us"]["p50"] / 1000,
                "p99_ms": r["latency_us"]["p99"] / 1000,
            }
            for r in results
        ],
    )


async def _stored(url: str) -> tuple[int, int]:
    """(clients stored, requests counted in the statistics), read through the store itself."""
    store = open_store(url)
    await store.open()
    try:
        counts = await store.counts(int(time.time()))
        stats = await store.stats()
        return sum(counts.values()), stats.total
    finally:
        await store.close()


def stored_when_settled(url: str) -> tuple[int, int]:
    """The store's figures once the host has answered everything in flight (bounded wait)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last = asyncio.run(_stored(url))
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = asyncio.run(_stored(url))
        if current == last:
            return current
        last = current
    return last


def open_loop(server: Server, rate: float, duration: float, connections: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "openloop.py"),
            "--url",
            server.url,
            "--rate",
            f"{rate:.0f}",
            "--duration",
            f"{duration:g}",
            "--connections",
            str(connections),
            "--product",
            PRODUCT,
            "--key",
            GVLK,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"openloop.py failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class Database:
    """The store URL for the run: a fresh SQLite file, or a fresh PostgreSQL database."""

    def __init__(self, given: str | None, directory: Path) -> None:
        self.given = given
        self.created: str | None = None
        if given is None:
            self.url = f"sqlite:///{directory / 'bench.db'}"
        elif given.startswith(("postgresql://", "postgres://")):
            name = f"volact_bench_{secrets.token_hex(4)}"
            self._admin(f'CREATE DATABASE "{name}"')
            self.created = name
            parts = urlsplit(given)
            self.url = urlunsplit(parts._replace(path=f"/{name}"))
        else:
            self.url = given

    def _admin(self, sql: str) -> None:
        import psycopg

        assert self.given is not None
        with psycopg.connect(self.given, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def drop(self) -> None:
        if self.created is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.created}" WITH (FORCE)')
            self.created = None

    @property
    def kind(self) -> str:
        return self.url.split(":", 1)[0]


def first_ticket_checks(host: Server, public_key: crypto.VerifyKey) -> None:
    """One activation through the real host: 200, and a ticket signed by the host's key."""
    status, answer = post_json(f"{host.url}/v1/activate", activation_body())
    if status != 200:
        raise RuntimeError(f"the host answered {status}: {answer}")
    crypto.verify(answer["ticket"], "ticket", [public_key])


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    machine = Machine.here()
    directory = Path(tempfile.mkdtemp(prefix="volact-bench-"))
    database = Database(args.db, directory)
    hosts: list[Server] = []
    reference: Server | None = None
    try:
        files = make_host_dir(directory / "host", threshold=1)
        hosts = [
            host_server(
                files.directory,
                directory / f"host-{index}.log",
                database_url=database.url,
                log_level=args.log_level,
            ).start()
            for index in range(args.hosts)
        ]
        reference = reference_server(directory / "reference.log").start()
        for host in hosts:
            first_ticket_checks(host, files.signing_key().public_key)

        log(args, f"warm-up: {args.warmup:g} s each")
        wrk(hosts, args.connections, args.warmup, 1, label="host")
        wrk([reference], args.connections, args.warmup, 2, label="reference")

        host_runs: list[Run] = []
        reference_runs: list[Run] = []
        for round_number in range(args.rounds):
            before = stored_when_settled(database.url)
            run = wrk(hosts, args.connections, args.duration, 10 + round_number, label="host")
            after = stored_when_settled(database.url)
            run.stored_clients = after[0] - before[0]
            run.in_flight = run.stored_clients - (run.requests - run.non_2xx)
            host_runs.append(run)
            log(args, describe(run))
            run = wrk(
                [reference], args.connections, args.duration, 50 + round_number, label="reference"
            )
            reference_runs.append(run)
            log(args, describe(run))

        host_rate = median([r.requests_per_second for r in host_runs])
        reference_rate = median([r.requests_per_second for r in reference_runs])
        result: dict[str, Any] = {
            "machine": asdict(machine),
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections": args.connections,
                "rounds": args.rounds,
                "hosts": args.hosts,
                "database": database.kind,
                "wrk_threads_per_process": 1,
                "host_log_level": args.log_level,
            },
            "host": summary(host_runs),
            "reference": summary(reference_runs),
            "ratio": round(host_rate / reference_rate, 3),
            "ratio_per_round": [
                round(h.requests_per_second / r.requests_per_second, 3)
                for h, r in zip(host_runs, reference_runs, strict=True)
            ],
            "target_ratio": TARGET_RATIO,
            "target_p99_ms": TARGET_P99_MS,
            "runs": [
                asdict(r) for pair in zip(host_runs, reference_runs, strict=True) for r in pair
            ],
        }
        result["stored_matches"] = all(
            r.in_flight is not None and 0 <= r.in_flight <= args.connections and r.non_2xx == 0
            for r in host_runs
        )
        if args.open_rate is None:
            rates = [round(host_rate * fraction) for fraction in OPEN_LOOP_FRACTIONS]
        else:
            rates = [round(float(rate)) for rate in args.open_rate.split(",") if float(rate) > 0]
        result["open_loop"] = []
        for rate in rates:
            log(args, f"open loop at {rate} requests/s for {args.duration:g} s each")
            result["open_loop"].append(
                {
                    "offered_rate": rate,
                    "host": open_loops(hosts, rate, args),
                    "reference": open_loops([reference], rate, args),
                }
            )
        return result
    finally:
        for server in [*hosts, *([reference] if reference else [])]:
            server.stop()
        try:
            database.drop()
        finally:
            if not args.keep:
                shutil.rmtree(directory, ignore_errors=True)


def open_loops(servers: list[Server], rate: float, args: argparse.Namespace) -> list[Any]:
    """The open-loop run on every server at once, the rate and connections split evenly."""
    share = len(servers)
    with ThreadPoolExecutor(share) as pool:
        return list(
            pool.map(
                lambda s: open_loop(s, rate / share, args.duration, args.connections // share),
                servers,
            )
        )


def summary(runs: list[Run]) -> dict[str, Any]:
    return {
        "requests_per_second": median([r.requests_per_second for r in runs]),
        "p50_ms": median([r.p50_ms for r in runs]),
        "p99_ms": median([r.p99_ms for r in runs]),
        "non_2xx": sum(r.non_2xx for r in runs),
        "socket_errors": sum(r.socket_errors for r in runs),
        "server_cpu_us_per_request": median([r.server_cpu_us_per_request for r in runs]),
    }


def describe(run: Run) -> str:
    text = (
        f"{run.server:9s} {run.requests_per_second:8.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
        f"p99 {run.p99_ms:7.2f} ms  non-2xx {run.non_2xx}  server CPU "
        f"{run.server_cpu_percent:.0f}% ({run.server_cpu_us_per_request:.0f} us/req), "
        f"wrk CPU {run.wrk_cpu_percent:.0f}%"
    )
    if run.stored_clients is not None:
        text += f"  stored {run.stored_clients} (in flight at the end: {run.in_flight})"
    return text


def log(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, flush=True)


def report(result: dict[str, Any]) -> None:
    host, reference = result["host"], result["reference"]
    settings = result["settings"]
    print()
    print(f"Machine: {Machine(**result['machine']).describe()}")
    print(
        f"Settings: {settings['hosts']} host process(es), {settings['database']}, "
        f"{settings['connections']} connections, wrk with 1 thread per process, "
        f"{settings['rounds']} rounds of {settings['duration_s']:g} s, medians below"
    )
    print(f"{'':10s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU us/req':>11s}")
    for label, figures in (("host", host), ("reference", reference)):
        print(
            f"{label:10s} {figures['requests_per_second']:9.0f} {figures['p50_ms']:8.2f} "
            f"{figures['p99_ms']:8.2f} {figures['server_cpu_us_per_request']:11.0f}"
        )
    ratio = result["ratio"]
    verdict = "meets" if ratio >= result["target_ratio"] else "misses"
    print(
        f"Ratio host/reference: {ratio:.2f} ({verdict} the target "
        f"{result['target_ratio']:.2f}); per round {result['ratio_per_round']}"
    )
    p99_ok = host["p99_ms"] <= result["target_p99_ms"]
    print(
        f"Host p99 at saturation {host['p99_ms']:.2f} ms: "
        f"{'within' if p99_ok else 'over'} {result['target_p99_ms']:g} ms "
        f"(closed loop: mostly queueing, {settings['connections']} / throughput = "
        f"{settings['connections'] / host['requests_per_second'] * 1000:.1f} ms)"
    )
    print(
        f"Stored clients = 2xx answers (+ requests in flight at the end): "
        f"{'yes' if result['stored_matches'] else 'NO'}; host non-2xx: {host['non_2xx']}"
    )
    for open_loop_figures in result["open_loop"]:
        print(f"Open loop at {open_loop_figures['offered_rate']} requests/s offered:")
        for label in ("host", "reference"):
            for figures in open_loop_figures[label]:
                latency = figures["latency_ms"]
                print(
                    f"  {label:10s} achieved {figures['achieved_rate']:7.0f}/s  "
                    f"p50 {latency['p50']:6.2f} ms  p99 {latency['p99']:6.2f} ms  "
                    f"p99.9 {latency['p999']:6.2f} ms  max {latency['max']:7.2f} ms  "
                    f"statuses {figures['statuses']} errors {figures['errors']}"
                )
        host_p99 = max(f["latency_ms"]["p99"] for f in open_loop_figures["host"])
        print(
            f"  host p99 at this rate {host_p99:.2f} ms: "
            f"{'within' if host_p99 <= result['target_p99_ms'] else 'over'} "
            f"{result['target_p99_ms']:g} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="host/reference pairs")
    parser.add_argument("--db", default=None, help="store URL (default: a fresh SQLite file)")
    parser.add_argument("--hosts", type=int, default=1, help="host processes on one database")
    parser.add_argument(
        "--open-rate",
        default=None,
        metavar="R[,R…]",
        help="requests/s for the open-loop latency runs (default: 25%% and 50%% of the host's "
        "closed-loop throughput; 0 skips them)",
    )
    parser.add_argument("--log-level", default="info", help="the host's --log-level")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk; scripts/setup does it)")
    result = benchmark(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


if __name__ == "__main__":
    main()
