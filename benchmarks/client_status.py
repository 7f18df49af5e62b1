"""Benchmark: the client's offline status (SPEC §12).

Targets:

* ``License.status()`` warm (reads the state file, verifies the certificate and the ticket,
  computes the state): median ≤ 1 ms;
* ``volact client status`` as a whole process: median ≤ 300 ms.

Each figure comes with a reference measured in the same run on the same machine, so results
from busy or slow machines can still be compared: two bare Ed25519 verifications (the
cryptographic floor of ``status()``) and the start of a bare ``python -c pass`` process.

The product is activated once through the real host service (in-process, memory store), so
the state file is exactly what a client keeps. Run::

    .venv/bin/python benchmarks/client_status.py [--calls 3000] [--runs 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from volact import crypto
from volact.client import License
from volact.core import keys
from volact.core.descriptor import ProductDescriptor, sign_descriptor
from volact.core.durations import DAY
from volact.core.policy import GroupPolicy
from volact.core.tickets import HostCertificate, issue_certificate
from volact.host.app import create_app
from volact.host.identity import HostFiles, HostSettings
from volact.host.service import HostService
from volact.net.transport import ASGITransportAdapter
from volact.store import MemoryStore

VENDOR = "acme"
GROUP = "office-2026"
PRODUCT = "writer-2026"


def activated_client(directory: Path) -> License:
    """A client of a certified in-process host, activated once; returns its License."""
    now = int(time.time())
    root = crypto.SigningKey.generate()
    signer = crypto.SigningKey.generate()
    descriptor = sign_descriptor(
        root,
        ProductDescriptor(
            vendor_id=VENDOR,
            vendor_name="Acme",
            root_keys=(root.public_key.paserk,),
            product=PRODUCT,
            product_name="Writer 2026",
            group=GROUP,
            gvlk=keys.make_gvlk(VENDOR, GROUP, PRODUCT).text,
        ),
    )
    certificate = issue_certificate(
        root,
        HostCertificate(
            cert_id="cert-1",
            vendor_id=VENDOR,
            host_id="host-1",
            host_key=signer.public_key.paserk,
            customer="Contoso",
            key_serial="host-0",
            groups={GROUP: GroupPolicy(threshold=1)},
            not_before=now - DAY,
            not_after=now + 730 * DAY,
            issued_at=now - DAY,
        ),
    )
    files = HostFiles(directory / "host")
    files.save_settings(
        HostSettings(
            host_id="host-1",
            host_key=keys.make_secret_key(keys.Channel.HOST, os.urandom(12)).text,
            vendor_id=VENDOR,
            vendor_root_keys=[root.public_key.paserk],
        )
    )
    files.save_signing_key(signer)
    files.save_certificate_token(certificate.token)
    service = HostService.from_files(files, MemoryStore(), lambda: int(time.time()))
    service.maintenance_interval = 0
    asyncio.run(service.start())
    transport = ASGITransportAdapter(create_app(service, rate_limit=0))
    client = License(descriptor, directory / "client", transport=transport)
    client.install_key()
    client.configure(manual_host="host.test")
    status = client.activate()
    assert status.state == "licensed", status
    asyncio.run(service.stop())
    return client


def timings(function: Callable[[], object], calls: int) -> list[float]:
    """Seconds per call, each call timed alone (after a warm-up)."""
    for _ in range(min(100, calls)):
        function()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        out.append(time.perf_counter() - start)
    return out


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def process_times(command: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(command, env=env, capture_output=True, check=True)  # warm the caches
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="status() calls to time")
    parser.add_argument("--runs", type=int, default=20, help="`volact client status` processes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="volact-bench-") as tmp:
        directory = Path(tmp)
        client = activated_client(directory)

        # The cryptographic floor: two Ed25519 verifications (cryptography, no envelope), as
        # status() must verify the host certificate and the ticket.
        floor_key = Ed25519PrivateKey.generate()
        message = os.urandom(1024)
        signature = floor_key.sign(message)
        public = floor_key.public_key()

        def two_verifications() -> None:
            public.verify(signature, message)
            public.verify(signature, message)

        sdk = timings(client.status, args.calls)
        floor = timings(two_verifications, args.calls)

        env = {k: v for k, v in os.environ.items() if not k.startswith("VOLACT_")}
        env["VOLACT_STATE_DIR"] = str(directory / "client")
        # Compiled bytecode is cached, as for an installed package (the warm-up run writes it),
        # in a cache of its own so that the source tree is left alone.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(directory / "pycache")
        cli = process_times([sys.executable, "-m", "volact", "client", "status"], args.runs, env)
        bare = process_times([sys.executable, "-c", "pass"], args.runs, env)

    result: dict[str, Any] = {
        "status_call": {
            "median_ms": statistics.median(sdk) * 1e3,
            "p99_ms": percentile(sdk, 0.99) * 1e3,
            "target_median_ms": 1.0,
            "reference": "two bare Ed25519 verifications (cryptography)",
            "reference_median_ms": statistics.median(floor) * 1e3,
            "ratio": statistics.median(sdk) / statistics.median(floor),
            "calls": args.calls,
        },
        "status_process": {
            "median_ms": statistics.median(cli) * 1e3,
            "p90_ms": percentile(cli, 0.9) * 1e3,
            "target_median_ms": 300.0,
            "reference": "python -c pass",
            "reference_median_ms": statistics.median(bare) * 1e3,
            "ratio": statistics.median(cli) / statistics.median(bare),
            "runs": args.runs,
        },
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    call, process = result["status_call"], result["status_process"]
    verdict = {True: "meets", False: "MISSES"}
    print(f"volact client status benchmark (Python {result['python']}, {result['cpus']} CPUs, ")
    print(f"load average {', '.join(f'{x:.2f}' for x in result['load_average'])})")
    print()
    print(f"License.status(), warm, {call['calls']} calls:")
    print(f"  median {call['median_ms']:.3f} ms, p99 {call['p99_ms']:.3f} ms")
    print(
        f"  reference: two bare Ed25519 verifications, median "
        f"{call['reference_median_ms']:.3f} ms; ratio {call['ratio']:.2f}"
    )
    print(f"  target median <= 1 ms: {verdict[call['median_ms'] <= call['target_median_ms']]}")
    print()
    print(f"`volact client status` as a process, {process['runs']} runs:")
    print(f"  median {process['median_ms']:.0f} ms, p90 {process['p90_ms']:.0f} ms")
    print(
        f"  reference: `python -c pass`, median {process['reference_median_ms']:.0f} ms; "
        f"ratio {process['ratio']:.1f}"
    )
    print(
        f"  target median <= 300 ms: {verdict[process['median_ms'] <= process['target_median_ms']]}"
    )


if __name__ == "__main__":
    main()
