"""Benchmark: well-behaved clients activating while one address attacks the host (issue 17).

32 well-behaved clients (wrk, one thread, 32 connections from 127.0.0.1, every request a new
client, so a write and a signature each) activate against ``volact host serve`` while one
address, 127.0.0.2 (every 127.0.0.0/8 address is this machine on Linux), holds ``--attackers``
(2,000) connections open, in one of two ways:

- ``idle``: connect and send nothing;
- ``slow``: send the start of a request head, then one more header line every second, never
  the end (slowloris).

Whenever the host closes one of the attacker's connections (refused over the per-address cap,
or cut at a time limit) the attacker opens it again a second later, so it goes on trying to
hold all of them for the whole run. The host runs with its default limits.

It alternates rounds of: no attack, idle attack, slow attack (``--rounds``, each
``--duration`` seconds of wrk, after a warm-up), on one host, and prints the well-behaved
clients' throughput, p50, p99 and non-2xx answers for each, the medians, and the ratio of the
p99 under attack to the p99 without it (target: at most 3, and no non-2xx). It also prints
what the attacker saw (connections opened, refused at once, cut later) and the host's open
descriptors at the end of each run. It never asserts a time limit.

Run from the repository root::

    .venv/bin/python benchmarks/attack.py [--rounds 2] [--duration 8] [--attackers 2000]
        [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common import BENCHMARKS, host_server, make_host_dir, wrk_command, wrk_figures

ATTACKER_ADDRESS = "127.0.0.2"
TARGET_P99_RATIO = 3.0
RECONNECT_AFTER = 1.0
DRIBBLE_EVERY = 1.0
MODES = ("none", "idle", "slow")


@dataclass
class Run:
    mode: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    host_descriptors: int
    attacker: dict[str, Any]


# --- the attacker (a process of its own: `attack.py --attacker MODE URL N SECONDS`) -----------


async def attacker(mode: str, host: str, port: int, count: int, seconds: float) -> dict[str, Any]:
    stats = {"opened": 0, "refused": 0, "cut": 0, "connect_failed": 0, "peak_open": 0}
    open_now = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(seconds, stop.set)

    async def one() -> None:
        nonlocal open_now
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(ATTACKER_ADDRESS, 0)
                )
            except OSError:
                stats["connect_failed"] += 1
                await asyncio.sleep(RECONNECT_AFTER)
                continue
            stats["opened"] += 1
            open_now += 1
            stats["peak_open"] = max(stats["peak_open"], open_now)
            try:
                if mode == "slow":
                    writer.write(b"POST /v1/activate HTTP/1.1\r\nHost: x\r\n")
                answered = False
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(4096), DRIBBLE_EVERY)
                    except TimeoutError:
                        if mode == "slow":
                            writer.write(b"X-Slow: y\r\n")
                        continue
                    if not data:
                        break
                    answered = True
                stats["refused" if answered else "cut"] += 0 if stop.is_set() else 1
            except OSError:
                stats["cut"] += 1
            finally:
                open_now -= 1
                writer.close()
            if not stop.is_set():
                await asyncio.sleep(RECONNECT_AFTER)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    print("ready", flush=True)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def attacker_main(argv: list[str]) -> None:
    mode, url, count, seconds = argv
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stats = asyncio.run(attacker(mode, host, int(port), int(count), float(seconds)))
    print(json.dumps(stats), flush=True)


# --- the runner ---------------------------------------------------------------------------------


def wrk(url: str, connections: int, seconds: float, seed: int) -> dict[str, Any]:
    done = subprocess.run(
        wrk_command(url, connections, seconds, seed, ("--latency", "--timeout", "10s")),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    return wrk_figures(done.stdout, done.stderr)


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def one_run(url: str, pid: int, mode: str, args: argparse.Namespace, seed: int) -> Run:
    attack: subprocess.Popen[str] | None = None
    if mode != "none":
        attack = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--attacker",
                mode,
                url,
                str(args.attackers),
                str(args.duration + 60),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert attack.stdout is not None
        if attack.stdout.readline().strip() != "ready":
            raise RuntimeError("the attacker did not start")
        time.sleep(args.settle)  # let it open its connections before measuring
    try:
        figures = wrk(url, args.connections, args.duration, seed)
        fds = descriptors(pid)
    finally:
        stats: dict[str, Any] = {}
        if attack is not None:
            attack.send_signal(signal.SIGTERM)
            out, _ = attack.communicate(timeout=120)
            stats = json.loads(out.strip().splitlines()[-1])
    errors = figures["errors"]
    latency = figures["latency_us"]
    return Run(
        mode=mode,
        requests_per_second=round(figures["requests"] / (figures["duration_us"] / 1e6), 1),
        p50_ms=round(latency["p50"] / 1000, 2),
        p99_ms=round(latency["p99"] / 1000, 2),
        requests=figures["requests"],
        non_2xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        host_descriptors=fds,
        attacker=stats,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--attacker":
        attacker_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--attackers", type=int, default=2000)
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds the attacker gets before measuring"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="volact-attack-") as scratch:
        work = Path(scratch)
        make_host_dir(work / "host")
        with host_server(work / "host", work / "host.log") as server:
            wrk(server.url, args.connections, 2.0, seed=999)  # warm-up
            for round_number in range(args.rounds):
                for index, mode in enumerate(MODES):
                    run = one_run(server.url, server.pid, mode, args, round_number * 10 + index)
                    runs.append(run)
                    if not args.json:
                        print(
                            f"round {round_number + 1} {mode:>4}: "
                            f"{run.requests_per_second:,.0f} req/s, p50 {run.p50_ms:.2f} ms, "
                            f"p99 {run.p99_ms:.2f} ms, non-2xx {run.non_2xx}, "
                            f"socket errors {run.socket_errors}, host fds {run.host_descriptors}"
                            + (f", attacker {run.attacker}" if run.attacker else ""),
                            flush=True,
                        )
            log_lines = (work / "host.log").read_text().splitlines()
    summary: dict[str, Any] = {}
    for mode in MODES:
        mine = [run for run in runs if run.mode == mode]
        summary[mode] = {
            "requests_per_second": statistics.median(r.requests_per_second for r in mine),
            "p99_ms": statistics.median(r.p99_ms for r in mine),
            "non_2xx": sum(r.non_2xx for r in mine),
            "socket_errors": sum(r.socket_errors for r in mine),
        }
    base = summary["none"]["p99_ms"]
    for mode in ("idle", "slow"):
        summary[mode]["p99_ratio"] = round(summary[mode]["p99_ms"] / base, 2) if base else None
        summary[mode]["throughput_ratio"] = round(
            summary[mode]["requests_per_second"] / summary["none"]["requests_per_second"], 2
        )
    refusals = [line for line in log_lines if "connections refused over the caps" in line]
    result = {
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "host_refusal_log_lines": len(refusals),
        "emfile_in_log": any("Too many open files" in line for line in log_lines),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print()
    for mode in MODES:
        figures = summary[mode]
        extra = ""
        if mode != "none":
            ok = figures["p99_ratio"] is not None and figures["p99_ratio"] <= TARGET_P99_RATIO
            ok = ok and figures["non_2xx"] == 0
            extra = (
                f", p99 {figures['p99_ratio']}x and throughput {figures['throughput_ratio']}x "
                f"of no attack ({'meets' if ok else 'MISSES'} the target: p99 at most "
                f"{TARGET_P99_RATIO:g}x, no non-2xx)"
            )
        print(
            f"{mode:>4}: median {figures['requests_per_second']:,.0f} req/s, "
            f"p99 {figures['p99_ms']:.2f} ms, non-2xx {figures['non_2xx']}, "
            f"socket errors {figures['socket_errors']}{extra}"
        )
    print(f"host log: {len(refusals)} refusal summaries, EMFILE: {result['emfile_in_log']}")


if __name__ == "__main__":
    sys.path.insert(0, str(BENCHMARKS))
    main()
