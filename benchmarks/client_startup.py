"""Benchmark: an app's start-up with the SDK, for two or more source trees in turn (issue 18).

What an app does when it starts: ``from volact.client import License``, then
``License.open(...)`` and the first ``status()`` (an activated product: the chain is verified).
Each is timed inside a fresh process, for each source tree given (``PYTHONPATH`` pointing at
it) in turn within every round, with the reference ``import json`` + cryptography's Ed25519
timed in a fresh process beside each, so that a burst of load on a shared machine falls on
every tree alike. The product is activated once against a real ``volact host serve`` (this
tree's code); every tree then reads the same state directory (status writes nothing).

Compare the working tree with an older commit::

    git worktree add /tmp/old COMMIT
    .venv/bin/python benchmarks/client_startup.py --runs 21 src /tmp/old/src

Without trees it measures this tree's ``src``. Use the development venv (it runs the host).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from client_install import (  # the sibling script (this script's folder is on the path)
    ROOT,
    activate_in,
    clean_env,
    report_startup,
    serve_host,
    startup_once,
    startup_summary,
    vendor_and_host,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path, help="source trees (default: src)")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="keep the files in this new directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.trees] or [ROOT / "src"]
    work = args.keep or Path(tempfile.mkdtemp(prefix="volact-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    python = Path(sys.executable)
    envs = {str(tree): clean_env(PYTHONPATH=str(tree)) for tree in trees}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in envs}
    try:
        descriptor, host_dir, gvlk = vendor_and_host(work)
        host, address = serve_host(host_dir, work / "host.log")
        try:
            state_dir = work / "client"
            env = clean_env(PYTHONPATH=str(ROOT / "src"))
            activated = activate_in(python, descriptor, state_dir, gvlk, address, env)
            if not activated["usable"]:
                raise RuntimeError(f"the activation did not succeed: {activated}")
        finally:
            host.send_signal(signal.SIGTERM)
            host.wait(timeout=60)
        for round_ in range(args.runs + 1):  # the first round warms the caches
            for name, env in envs.items():
                sample = startup_once(python, state_dir, env)
                if round_:
                    samples[name].append(sample)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    results = {name: startup_summary(values) for name, values in samples.items()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, summary in results.items():
        print(f"== {name} (volact from {summary['volact']}), medians of {args.runs}")
        report_startup(summary, "  ")


if __name__ == "__main__":
    main()
