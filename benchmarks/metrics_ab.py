"""A/B: activation throughput with the Prometheus metrics on and off, alternating rounds.

One source tree, two flags: each round starts a fresh certified host with an admin token (so
the admin listener runs, on a free port) with ``--metrics``, then one with ``--no-metrics``
(the order swaps every round), warms it for 2 s and drives it with wrk as ``ab.py`` does (one
thread, 64 connections, every request a new client, so every request is signed and committed).
It prints each run, the medians, and the per-round ratio on/off of the throughput and of the
host's CPU time per request (user + system of the host process, from /proc: much less moved by
other work on a shared machine than the throughput is); within 5 % is the goal::

    .venv/bin/python benchmarks/metrics_ab.py --rounds 6 --duration 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from ab import Run, drive
from common import host_server, make_host_dir
from host_throughput import cpu_seconds

from volact.host.admin.token import ensure_token

VARIANTS = {"metrics on": "--metrics", "metrics off": "--no-metrics"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    results: dict[str, list[Run]] = {name: [] for name in VARIANTS}
    cpu_us: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="volact-metrics-ab-") as scratch:
        work = Path(scratch)
        for round_number in range(args.rounds):
            order = list(VARIANTS) if round_number % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                directory = work / f"host-{round_number}-{name.replace(' ', '-')}"
                make_host_dir(directory)
                ensure_token(directory)
                extra = ("--admin-port", "0", VARIANTS[name])
                with host_server(directory, work / "host.log", extra=extra) as server:
                    drive(server.url, 2.0, seed=1_000 + round_number)
                    before = cpu_seconds(server.pid)
                    run = drive(server.url, args.duration, seed=round_number * 10)
                    spent = cpu_seconds(server.pid) - before
                results[name].append(run)
                per_request = spent / (run.rate * args.duration) * 1e6
                cpu_us[name].append(per_request)
                print(
                    f"round {round_number + 1}  {name}: {run.rate:,.0f} req/s, "
                    f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
                    f"host CPU {per_request:.0f} µs/request",
                    flush=True,
                )
    on = [run.rate for run in results["metrics on"]]
    off = [run.rate for run in results["metrics off"]]
    print()
    for name, runs in results.items():
        rates = [run.rate for run in runs]
        print(
            f"{name}: median {statistics.median(rates):,.0f} req/s, "
            f"p50 {statistics.median(run.p50_ms for run in runs):.2f} ms, "
            f"p99 {statistics.median(run.p99_ms for run in runs):.2f} ms "
            f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    print(
        f"throughput on/off per round: {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f}; medians' ratio "
        f"{statistics.median(on) / statistics.median(off):.3f}"
    )
    cpu = [a / b for a, b in zip(cpu_us["metrics on"], cpu_us["metrics off"], strict=True)]
    print(
        f"host CPU per request on/off per round: {', '.join(f'{r:.3f}' for r in cpu)}; "
        f"median {statistics.median(cpu):.3f}; medians "
        f"{statistics.median(cpu_us['metrics on']):.0f} / "
        f"{statistics.median(cpu_us['metrics off']):.0f} µs"
    )


if __name__ == "__main__":
    main()
