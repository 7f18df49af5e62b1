"""Benchmark: what ``pip install volact`` (no extras) costs the vendor's desktop app.

Builds the wheel from this tree, installs it without extras into a fresh virtual environment and
prints:

* the installed size and the packages it brought (beyond what a fresh venv holds);
* ``import volact.client`` cold (no bytecode cache yet) and warm, as whole processes, and the
  import alone timed inside a fresh process (start-up left out: the steadier figure);
* the import time of the first ``activate()`` (the first call minus the second, both against a
  real ``volact host serve`` started from the full install running this script);
* an app's start-up: ``from volact.client import License``, then ``License.open(...)`` and the
  first ``status()`` on the activated state (the chain verified), each timed inside a fresh
  process, with what the first ``status()`` imports (issue 18: what is left out of the import
  must not come back at the first status);

each with ``python -c pass`` and ``import json`` (and the SDK's own crypto library,
``cryptography``'s Ed25519) measured in the same run and venv as references, so figures from a
busy machine still compare. Aims (issue 18): at most 30 MB, and the SDK's import under 3× the
import of ``json`` + its crypto library (import times: the process minus ``python -c pass``).

``--full`` also installs ``volact[all]`` in a second venv (what the package used to bring to
every client). Run with the development venv (it needs ``build`` and the host)::

    .venv/bin/python benchmarks/client_install.py [--runs 15] [--full] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120.0
CRYPTO_IMPORT = "import cryptography.hazmat.primitives.asymmetric.ed25519"

# Run inside the fresh venv: the SDK as an app uses it, against the real host at argv[4].
ACTIVATE = """
import json, sys, time
started = time.perf_counter()
import volact.client
imported = time.perf_counter()
from volact.client import License
descriptor, state_dir, key, address = sys.argv[1:5]
lic = License.from_descriptor(descriptor, state_dir)
lic.install_key(key)
lic.configure(manual_host=address)
before = set(sys.modules)
t0 = time.perf_counter()
first = lic.activate()
t1 = time.perf_counter()
second = lic.activate()
t2 = time.perf_counter()
print(json.dumps({
    "import": imported - started,
    "first_activate": t1 - t0,
    "second_activate": t2 - t1,
    "state": str(second.state),
    "usable": second.usable,
    "modules_by_activate": sorted(m for m in set(sys.modules) - before if "." not in m),
}))
"""

# Run inside the fresh venv: an app's start-up on an activated state directory (argv[1]). The
# json module is imported after the timings, as it is not the app's.
STARTUP = """
import sys, time
t0 = time.perf_counter()
from volact.client import License
t1 = time.perf_counter()
before = set(sys.modules)
lic = License.open(state_dir=sys.argv[1])
first = lic.status()
t2 = time.perf_counter()
second = lic.status()
t3 = time.perf_counter()
imported = sorted(set(sys.modules) - before)
import json
print(json.dumps({
    "import": t1 - t0,
    "open_and_first_status": t2 - t1,
    "second_status": t3 - t2,
    "startup": t2 - t0,
    "state": str(first.state),
    "usable": first.usable and second.usable,
    "modules_by_first_status": imported,
    "volact": sys.modules["volact"].__file__,
}))
"""

SIZES = """
import json, os, sys
from importlib import metadata
out = {}
for dist in metadata.distributions():
    size = 0
    for file in dist.files or []:
        try:
            size += os.path.getsize(file.locate())
        except OSError:
            pass
    out[dist.metadata["Name"].lower()] = size
print(json.dumps(out))
"""


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=True, **options)


def build_wheel(out: Path) -> Path:
    """The wheel of this tree (hatchling, no build isolation: offline and quick)."""
    run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ]
    )
    (wheel,) = out.glob("volact-*.whl")
    return wheel


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this tree on the path or volact settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VOLACT_", "PYTHON", "FAKETIME")) and key != "LD_PRELOAD"
    }
    env.update(extra)
    return env


def fresh_venv(path: Path) -> Path:
    """A new venv (with pip) at ``path``; its python."""
    run([sys.executable, "-m", "venv", str(path)])
    return path / "bin" / "python"


def site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(run([str(python), "-c", code], env=clean_env()).stdout.strip())


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def distributions(python: Path) -> dict[str, int]:
    return dict(json.loads(run([str(python), "-c", SIZES], env=clean_env()).stdout))


def install(python: Path, requirement: str) -> None:
    run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
        env=clean_env(),
    )


def installed_delta(python: Path, requirement: str) -> dict[str, Any]:
    """Install ``requirement`` into the venv; what it added (bytes, packages)."""
    where = site_packages(python)
    size_before, dists_before = tree_size(where), distributions(python)
    install(python, requirement)
    size_after, dists_after = tree_size(where), distributions(python)
    added = {name: size for name, size in dists_after.items() if name not in dists_before}
    return {"bytes": size_after - size_before, "packages": dict(sorted(added.items()))}


def process_times(python: Path, codes: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Seconds per ``python -c CODE`` process for each code, after one warm-up run each.

    The codes take turns within each run, so a burst of load on the shared machine falls on
    all of them alike and the ratios hold."""
    env = clean_env()
    for code in codes.values():
        run([str(python), "-c", code], env=env)
    out: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(runs):
        for name, code in codes.items():
            start = time.perf_counter()
            run([str(python), "-c", code], env=env)
            out[name].append(time.perf_counter() - start)
    return out


TIMED = "import time; _t = time.perf_counter(); {}; print(time.perf_counter() - _t)"


def import_times(python: Path, imports: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Seconds of each import statement, timed inside its own fresh process (the process's
    start-up left out); the statements take turns within each run."""
    env = clean_env()
    out: dict[str, list[float]] = {name: [] for name in imports}
    for _ in range(runs + 1):
        for name, statement in imports.items():
            done = run([str(python), "-c", TIMED.format(statement)], env=env)
            out[name].append(float(done.stdout))
    return {name: values[1:] for name, values in out.items()}  # the first run warms the caches


def cold_import_times(python: Path, runs: int) -> list[float]:
    """``import volact.client`` with no bytecode cache for volact and its dependencies."""
    where = site_packages(python)
    out = []
    for _ in range(runs):
        for cache in where.rglob("__pycache__"):
            shutil.rmtree(cache)
        start = time.perf_counter()
        run([str(python), "-c", "import volact.client"], env=clean_env())
        out.append(time.perf_counter() - start)
    return out


def vendor_and_host(directory: Path) -> tuple[Path, Path, str]:
    """A signed descriptor, its GVLK and a certified host directory (the full install's code)."""
    sys.path.insert(0, str(ROOT / "src"))
    from volact import crypto
    from volact.core import keys
    from volact.core.descriptor import ProductDescriptor, sign_descriptor
    from volact.core.durations import DAY
    from volact.core.policy import GroupPolicy
    from volact.core.tickets import HostCertificate, issue_certificate
    from volact.host.identity import HostFiles, HostSettings

    now = int(time.time())
    root, signer = crypto.SigningKey.generate(), crypto.SigningKey.generate()
    gvlk = keys.make_gvlk("acme", "office-2026", "writer-2026").text
    descriptor = sign_descriptor(
        root,
        ProductDescriptor(
            vendor_id="acme",
            vendor_name="Acme",
            root_keys=(root.public_key.paserk,),
            product="writer-2026",
            product_name="Writer 2026",
            group="office-2026",
            gvlk=gvlk,
        ),
    )
    descriptor_path = directory / "writer.json"
    descriptor_path.write_text(descriptor.to_file())
    files = HostFiles(directory / "host")
    files.save_settings(
        HostSettings(
            host_id="host-1",
            host_key=keys.make_secret_key(keys.Channel.HOST, os.urandom(12)).text,
            vendor_id="acme",
            vendor_root_keys=[root.public_key.paserk],
        )
    )
    files.save_signing_key(signer)
    certificate = issue_certificate(
        root,
        HostCertificate(
            cert_id="cert-1",
            vendor_id="acme",
            host_id="host-1",
            host_key=signer.public_key.paserk,
            customer="Contoso",
            key_serial="host-0",
            groups={"office-2026": GroupPolicy(threshold=1)},
            not_before=now - DAY,
            not_after=now + 730 * DAY,
            issued_at=now - DAY,
        ),
    )
    files.save_certificate_token(certificate.token)
    return descriptor_path, directory / "host", gvlk


def serve_host(host_dir: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    """`volact host serve` from the full install, on a free port; the process and address."""
    env = {**clean_env(), "PYTHONPATH": str(ROOT / "src")}
    with open(log, "ab") as stderr:
        process = subprocess.Popen(
            [
                *[sys.executable, "-m", "volact", "host", "serve", "--dir", str(host_dir)],
                *["--bind", "127.0.0.1", "--port", "0", "--rate-limit", "0"],
                *["--log-level", "warning"],
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    for line in process.stdout:  # the ready line comes first; a dead process ends the loop
        if line.startswith("volact host listening on "):
            address = line.split("http://", 1)[1].split()[0].strip().rstrip("/")
            return process, address
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError(f"the host did not start:\n{log.read_text()[-2000:]}")


def activate_in(
    python: Path,
    descriptor: Path,
    state_dir: Path,
    key: str,
    address: str,
    env: dict[str, str] | None = None,
) -> Any:
    done = run(
        [str(python), "-c", ACTIVATE, str(descriptor), str(state_dir), key, address],
        env=clean_env() if env is None else env,
    )
    return json.loads(done.stdout)


def startup_once(python: Path, state_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """One app start-up (:data:`STARTUP`) in a fresh process, then the reference ``import
    json`` + crypto timed in another (seconds)."""
    done = run([str(python), "-c", STARTUP, str(state_dir)], env=env)
    timed = run([str(python), "-c", TIMED.format(f"import json; {CRYPTO_IMPORT}")], env=env)
    return {**json.loads(done.stdout), "json+crypto": float(timed.stdout)}


def startup_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians (ms) of :func:`startup_once` samples, with the last one's state and modules."""
    names = ("import", "open_and_first_status", "second_status", "startup", "json+crypto")
    out: dict[str, Any] = {name: median_ms([sample[name] for sample in samples]) for name in names}
    for name in ("state", "usable", "modules_by_first_status", "volact"):
        out[name] = samples[-1][name]
    return out


def startup_times(python: Path, state_dir: Path, runs: int, env: dict[str, str]) -> dict[str, Any]:
    """An app's start-up in ``runs`` fresh processes after one warm-up, the reference in turn
    with it (so that load falls on both alike)."""
    samples = [startup_once(python, state_dir, env) for _ in range(runs + 1)]
    return startup_summary(samples[1:])


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--full", action="store_true", help="also measure volact[all]")
    parser.add_argument("--keep", type=Path, help="keep the venvs and files in this new directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="volact-install-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    host = None
    try:
        wheel = build_wheel(work / "dist")
        python = fresh_venv(work / "sdk-venv")
        results["sdk"] = installed_delta(python, str(wheel))
        if args.full:
            full = fresh_venv(work / "full-venv")
            results["full"] = installed_delta(full, f"{wheel}[all]")
        times = process_times(
            python,
            {
                "pass": "pass",
                "json": "import json",
                "json+crypto": f"import json; {CRYPTO_IMPORT}",
                "volact.client warm": "import volact.client",
            },
            args.runs,
        )
        times["volact.client cold"] = cold_import_times(python, max(3, args.runs // 3))
        results["times_ms"] = {name: median_ms(values) for name, values in times.items()}
        inside = import_times(
            python,
            {
                "json": "import json",
                "crypto": CRYPTO_IMPORT,
                "json+crypto": f"import json; {CRYPTO_IMPORT}",
                "volact.client": "import volact.client",
            },
            args.runs,
        )
        results["import_ms"] = {name: median_ms(values) for name, values in inside.items()}
        descriptor, host_dir, gvlk = vendor_and_host(work)
        host, address = serve_host(host_dir, work / "host.log")
        activations = [
            activate_in(python, descriptor, work / f"client-{n}", gvlk, address)
            for n in range(max(3, args.runs // 3))
        ]
        results["activate"] = {
            "state": activations[-1]["state"],
            "usable": activations[-1]["usable"],
            "first_minus_second_ms": statistics.median(
                (a["first_activate"] - a["second_activate"]) * 1000 for a in activations
            ),
            "second_ms": statistics.median(a["second_activate"] * 1000 for a in activations),
            "modules_by_activate": activations[-1]["modules_by_activate"],
        }
        results["startup"] = startup_times(python, work / "client-0", args.runs, clean_env())
    finally:
        if host is not None:
            host.send_signal(signal.SIGTERM)
            host.wait(timeout=60)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report(results, args.json)


def report(results: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=2))
        return
    mb = 1024 * 1024
    for name in ("sdk", "full"):
        if name in results:
            found = results[name]
            label = "pip install volact" if name == "sdk" else "pip install 'volact[all]'"
            print(f"{label}: +{found['bytes'] / mb:.1f} MB, {len(found['packages'])} packages")
            for package, size in found["packages"].items():
                print(f"    {package:24} {size / mb:6.2f} MB")
    t = results["times_ms"]
    base = t["pass"]
    print("process medians (ms):  " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    own = {name: value - base for name, value in t.items() if name != "pass"}
    print(
        "import only, minus `python -c pass` (ms):  "
        + ", ".join(f"{k} {v:.1f}" for k, v in own.items())
    )
    reference = max(own["json+crypto"], 0.1)
    print(
        f"import volact.client warm / (import json + crypto): "
        f"{own['volact.client warm'] / reference:.2f}x (aim < 3x); "
        f"cold: {own['volact.client cold'] / reference:.2f}x"
    )
    inside = results["import_ms"]
    print(
        "in-process import medians (ms):  " + ", ".join(f"{k} {v:.1f}" for k, v in inside.items())
    )
    print(
        f"in-process: import volact.client / (import json + crypto): "
        f"{inside['volact.client'] / max(inside['json+crypto'], 0.01):.2f}x (aim < 3x)"
    )
    a = results["activate"]
    print(
        f"first activate() imports: {a['first_minus_second_ms']:.1f} ms "
        f"(= {a['first_minus_second_ms'] / max(own['json'], 0.1):.1f}x import json; "
        f"a second activate() takes {a['second_ms']:.1f} ms); state {a['state']}, "
        f"usable {a['usable']}"
    )
    print(f"modules the first activate() imports: {', '.join(a['modules_by_activate'])}")
    report_startup(results["startup"])


def report_startup(s: dict[str, Any], label: str = "") -> None:
    reference = max(s["json+crypto"], 0.01)
    print(
        f"{label}app start-up, in-process medians (ms): import {s['import']:.1f}, "
        f"License.open + first status() {s['open_and_first_status']:.1f} "
        f"(a second status() {s['second_status']:.2f}), together {s['startup']:.1f}; "
        f"json+crypto {s['json+crypto']:.1f}; state {s['state']}, usable {s['usable']}"
    )
    print(
        f"{label}import / (json + crypto): {s['import'] / reference:.2f}x (aim < 3x); "
        f"import + first status() / (json + crypto): {s['startup'] / reference:.2f}x"
    )
    modules = s["modules_by_first_status"]
    print(f"{label}modules the first status() imports: {', '.join(modules) or 'none'}")


if __name__ == "__main__":
    main()
