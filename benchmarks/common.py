"""What the host benchmarks share: a certified host directory, real server processes, bodies.

The benchmarks are scripts (``.venv/bin/python benchmarks/NAME.py``); this module sits beside
them and is imported as ``common``. It starts every server as a real process and never times
anything itself.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volact import crypto
from volact.core import keys
from volact.core.durations import DAY
from volact.core.policy import GroupPolicy
from volact.core.tickets import HostCertificate, issue_certificate
from volact.host.identity import HostFiles, HostSettings

VENDOR = "acme"
GROUP = "office-2026"
PRODUCT = "writer-2026"
GVLK = keys.make_gvlk(VENDOR, GROUP, PRODUCT).text
BENCHMARKS = Path(__file__).resolve().parent
WRK_SCRIPT = BENCHMARKS / "wrk" / "activate.lua"
START_TIMEOUT = 60.0


def wrk_command(
    url: str, connections: int, seconds: float, seed: int, options: tuple[str, ...] = ()
) -> list[str]:
    """The wrk command line that activates new clients at ``url`` (one thread): the script
    prints one ``VOLACT_WRK`` line of JSON figures (:func:`wrk_figures`)."""
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        *options,
        "-s",
        str(WRK_SCRIPT),
        f"{url}/v1/activate",
        "--",
        PRODUCT,
        GVLK,
        str(seed),
    ]


def wrk_figures(stdout: str, stderr: str = "") -> dict[str, Any]:
    """The figures of the ``VOLACT_WRK`` line that wrk's script printed (the last one)."""
    lines = [line for line in stdout.splitlines() if line.startswith("VOLACT_WRK ")]
    if not lines:
        raise RuntimeError(f"wrk printed no VOLACT_WRK line:\n{stdout}\n{stderr}")
    figures: dict[str, Any] = json.loads(lines[-1].removeprefix("VOLACT_WRK "))
    return figures


def make_host_dir(directory: Path, *, threshold: int = 1) -> HostFiles:
    """A host directory as ``volact host init`` + ``volact host activate`` leave it.

    The vendor's root key is made here and thrown away; the certificate covers one group whose
    threshold is ``threshold`` (1: every request is activated and signed).
    """
    now = int(time.time())
    root = crypto.SigningKey.generate()
    signer = crypto.SigningKey.generate()
    settings = HostSettings(
        host_id="host-bench-1",
        host_key=keys.make_secret_key(keys.Channel.HOST, os.urandom(12)).text,
        vendor_id=VENDOR,
        vendor_root_keys=[root.public_key.paserk],
    )
    files = HostFiles(directory)
    files.save_settings(settings)
    files.save_signing_key(signer)
    certificate = issue_certificate(
        root,
        HostCertificate(
            cert_id="cert-bench-1",
            vendor_id=VENDOR,
            host_id=settings.host_id,
            host_key=signer.public_key.paserk,
            customer="Benchmark Corp",
            key_serial="host-0123456789abcdef01234567",
            groups={GROUP: GroupPolicy(threshold=threshold)},
            not_before=now - DAY,
            not_after=now + 730 * DAY,
            issued_at=now - DAY,
        ),
    )
    files.save_certificate_token(certificate.token)
    return files


def activation_body(client_time: int | None = None) -> dict[str, Any]:
    """A good activation request body with a fresh CMID, fingerprint and nonce."""
    cmid = uuid.uuid4()
    return {
        "v": 1,
        "product": PRODUCT,
        "key": GVLK,
        "cmid": str(cmid),
        "fingerprint": cmid.hex,
        "machine": f"bench-{cmid.hex[:8]}",
        "client_time": int(time.time()) if client_time is None else client_time,
        "nonce": base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("="),
        "state": "oob_grace",
    }


def volact_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "volact", *args]


class Server:
    """A server process that prints one ready line naming its URL (``… on http://IP:PORT``)."""

    def __init__(self, command: list[str], log_path: Path, *, ready_prefix: str) -> None:
        self.command = command
        self.log_path = log_path
        self.ready_prefix = ready_prefix
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.started_at = 0.0
        self._reader: threading.Thread | None = None

    def start(self) -> Server:
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=log, text=True
            )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def read_lines() -> None:
            with stdout:
                for line in stdout:
                    lines.put(line)

        self._reader = threading.Thread(target=read_lines, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.05)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith(self.ready_prefix):
                self.url = line.rsplit(" on ", 1)[1].strip()
                return self
        self.kill()
        raise RuntimeError(f"{' '.join(self.command)} did not start:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM (the host commits its queue and closes its store), then wait."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._join()
        return status

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=START_TIMEOUT)
        self._join()

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=START_TIMEOUT)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def host_server(
    directory: Path,
    log_path: Path,
    *,
    database_url: str | None = None,
    log_level: str = "info",
    extra: tuple[str, ...] = (),
) -> Server:
    """``volact host serve`` on 127.0.0.1, a free port, rate limiting off."""
    command = volact_command(
        "host",
        "serve",
        "--dir",
        str(directory),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--rate-limit",
        "0",
        "--log-level",
        log_level,
    )
    if database_url is not None:
        command += ["--db", database_url]
    command += extra
    return Server(command, log_path, ready_prefix="volact host listening on ")


def reference_server(log_path: Path) -> Server:
    """The minimal Starlette JSON endpoint of ``reference_app.py`` under the host's uvicorn."""
    command = [sys.executable, str(BENCHMARKS / "reference_app.py"), "--port", "0"]
    return Server(command, log_path, ready_prefix="reference app listening on ")


def post_json(url: str, body: dict[str, Any], timeout: float = 30.0) -> tuple[int, Any]:
    """One POST with the standard library (a new connection each time); (status, JSON)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def get_json(url: str, timeout: float = 30.0) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, json.loads(response.read())


@dataclass(frozen=True)
class Machine:
    """Facts about the machine a benchmark ran on."""

    cpus: int
    cpu_model: str
    python: str
    load_average: tuple[float, float, float]

    @classmethod
    def here(cls) -> Machine:
        model = "unknown"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return cls(
            os.cpu_count() or 0,
            model,
            sys.version.split()[0],
            os.getloadavg(),
        )

    def describe(self) -> str:
        load = ", ".join(f"{value:.2f}" for value in self.load_average)
        return (
            f"{self.cpus} CPUs ({self.cpu_model}), Python {self.python}, "
            f"load average before the run {load}"
        )
