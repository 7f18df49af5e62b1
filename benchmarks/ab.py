"""A/B: the host from two (or more) source trees, alternating, under the same wrk load.

The machine's speed drifts by tens of percent within an hour, so two versions of the host are
compared only in the same run, taking turns: round 1 runs A then B, round 2 runs A then B, and
so on. Each run starts a fresh certified host from that tree (``PYTHONPATH=TREE``, the rest of
the environment as ``host_throughput.py`` uses it), warms it for 2 s and drives it with wrk (one
thread, 64 connections, every request a new client) for ``--duration`` seconds. It prints
requests/s, p50 and p99 per run, then the medians per tree and the per-round throughput ratio to
the first tree.

Make a tree of an older commit with ``git worktree add /tmp/old COMMIT``, then::

    .venv/bin/python benchmarks/ab.py /tmp/old/src src --rounds 4 --duration 8

Only ``src`` trees of this project work (``python -m volact`` must find the package there).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import host_server, make_host_dir, wrk_command, wrk_figures


@dataclass(frozen=True)
class Run:
    rate: float  # requests/s
    p50_ms: float
    p99_ms: float


def drive(url: str, seconds: float, seed: int) -> Run:
    """What wrk measured against ``url`` in ``seconds``."""
    done = subprocess.run(
        wrk_command(url, 64, seconds, seed),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    figures = wrk_figures(done.stdout, done.stderr)
    latency = figures["latency_us"]
    return Run(
        float(figures["requests"]) / (figures["duration_us"] / 1e6),
        latency["p50"] / 1000,
        latency["p99"] / 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", type=Path, help="src directories to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.trees]
    for tree in trees:
        if not (tree / "volact" / "__init__.py").is_file():
            parser.error(f"{tree} is not a src directory of volact")
    results: dict[Path, list[Run]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="volact-ab-") as scratch:
        work = Path(scratch)
        for round_number in range(args.rounds):
            for index, tree in enumerate(trees):
                directory = work / f"host-{round_number}-{index}"
                make_host_dir(directory)
                os.environ["PYTHONPATH"] = str(tree)  # read by the host process we start
                with host_server(directory, work / "host.log") as server:
                    drive(server.url, 2.0, seed=1_000 + round_number)
                    run = drive(server.url, args.duration, seed=round_number * 10 + index)
                results[tree].append(run)
                print(
                    f"round {round_number + 1}  {tree}: {run.rate:,.0f} req/s, "
                    f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms",
                    flush=True,
                )
    first = [run.rate for run in results[trees[0]]]
    print()
    for tree in trees:
        runs = results[tree]
        rates = [run.rate for run in runs]
        ratios = ", ".join(f"{b / a:.2f}" for a, b in zip(first, rates, strict=True))
        print(
            f"{tree}: median {statistics.median(rates):,.0f} req/s, "
            f"p50 {statistics.median(run.p50_ms for run in runs):.2f} ms, "
            f"p99 {statistics.median(run.p99_ms for run in runs):.2f} ms "
            f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)}; against the first: {ratios}; "
            f"p99s: {', '.join(f'{run.p99_ms:.1f}' for run in runs)})"
        )


if __name__ == "__main__":
    main()
