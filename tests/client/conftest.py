"""Fixtures for the client tests.

Fast tests run the real host service in-process (memory store, the real ASGI app) behind
``ASGITransportAdapter``, with a settable clock and ``StaticDNS``. End-to-end tests start real
``volact host serve`` and ``volact client`` processes under libfaketime (see :class:`FakeTime`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.factories import T0, Vendor
from volact import crypto
from volact.client import License
from volact.client.discovery import StaticDNS
from volact.core import keys
from volact.core.descriptor import ProductDescriptor
from volact.core.durations import DAY
from volact.core.errors import HostUnreachable
from volact.core.policy import GroupPolicy
from volact.core.tickets import HostCertificate
from volact.host.app import create_app
from volact.host.identity import HostFiles, HostSettings
from volact.host.service import HostService
from volact.net.transport import ASGITransportAdapter
from volact.store import MemoryStore

GROUP = "office-2026"
PRODUCT = "writer-2026"
START_TIMEOUT = 30.0


class Clock:
    """A settable clock (int Unix seconds) shared by hosts and clients."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> int:
        self.now += seconds
        return self.now


@dataclass
class HostDir:
    """A certified host directory, as `volact host init` + `host activate` leave it."""

    directory: Path
    files: HostFiles
    signer: crypto.SigningKey
    certificate: HostCertificate


def make_host_dir(
    vendor: Vendor,
    directory: Path,
    *,
    now: int = T0,
    host_id: str = "host-1",
    policy: GroupPolicy | None = None,
    group: str = GROUP,
) -> HostDir:
    signer = crypto.SigningKey.generate()
    certificate = vendor.certificate(
        signer,
        {group: policy or GroupPolicy()},
        not_before=now - DAY,
        not_after=now + 730 * DAY,
        host_id=host_id,
    )
    files = HostFiles(directory)
    files.save_settings(
        HostSettings(
            host_id=host_id,
            host_key=keys.make_secret_key(keys.Channel.HOST, os.urandom(12)).text,
            vendor_id=vendor.vendor_id,
            vendor_root_keys=[vendor.root.public_key.paserk],
        )
    )
    files.save_signing_key(signer)
    files.save_certificate_token(certificate.token)
    return HostDir(directory, files, signer, certificate)


def run_sync(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` to the end, also from inside a running event loop (in a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class InProcessHost:
    """The real host service (memory store) and app, reached without sockets."""

    def __init__(self, host: HostDir, clock: Callable[[], int]) -> None:
        self.host = host
        self.service = HostService.from_files(
            host.files, MemoryStore(), clock, maintenance_interval=0
        )
        run_sync(self.service.start())
        self.transport = ASGITransportAdapter(create_app(self.service, rate_limit=0))

    def close(self) -> None:
        run_sync(self.service.stop())


@dataclass
class Network:
    """A fake network of hosts by ``host:port``: unknown or "down" addresses are unreachable.

    It implements the client's transport (``post_json``, and ``get_json`` for the read-only
    diagnosis) and records every URL asked.
    """

    hosts: dict[str, InProcessHost] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        address = url.split("://", 1)[1].split("/", 1)[0]
        self.asked.append(address)
        host = self.hosts.get(address)
        if host is None or address in self.down:
            raise HostUnreachable(f"cannot reach {url}: connection refused", {"url": url})
        return host.transport.post_json(url, body)

    def get_json(self, url: str) -> dict[str, Any]:
        address = url.split("://", 1)[1].split("/", 1)[0]
        self.asked.append(address)
        host = self.hosts.get(address)
        if host is None or address in self.down:
            raise HostUnreachable(f"cannot reach {url}: connection refused", {"url": url})
        return host.transport.get_json(url)


@dataclass
class World:
    """One vendor, its product, some in-process hosts and a clock."""

    tmp: Path
    vendor: Vendor
    descriptor: ProductDescriptor
    clock: Clock
    network: Network
    dns: StaticDNS
    _hosts: list[InProcessHost] = field(default_factory=list)

    def add_host(
        self,
        address: str,
        *,
        vendor: Vendor | None = None,
        host_id: str | None = None,
        threshold: int = 5,
        **policy: int,
    ) -> InProcessHost:
        name = host_id or f"host-{len(self._hosts) + 1}"
        host_dir = make_host_dir(
            vendor or self.vendor,
            self.tmp / "hosts" / name,
            now=self.clock.now,
            host_id=name,
            policy=GroupPolicy(threshold=threshold, **policy),
        )
        host = InProcessHost(host_dir, self.clock)
        self._hosts.append(host)
        self.network.hosts[address] = host
        return host

    def machine(self, name: str, *, dns: StaticDNS | None = None, **options: Any) -> License:
        """A License for machine ``name`` (its own state dir and machine identity)."""
        return License(
            self.descriptor,
            self.tmp / "machines" / name,
            transport=self.network,
            dns=dns or self.dns,
            clock=self.clock,
            random=random.Random(name),
            machine_id=options.pop("machine_id", f"machine-id-{name}"),
            **options,
        )

    def close(self) -> None:
        for host in self._hosts:
            host.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    vendor = Vendor()
    built = World(tmp_path, vendor, vendor.descriptor(), Clock(T0), Network(), StaticDNS())
    yield built
    built.close()


# --- real processes ---------------------------------------------------------------------------

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without VOLACT_* (and faketime) settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VOLACT_", "FAKETIME")) and key != "LD_PRELOAD"
    }
    env.update(extra)
    return env


def fake_time_text(when: int) -> str:
    """libfaketime's absolute (frozen) time format, in UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))


def faketime_env(*, at: int | None = None, file: Path | None = None) -> dict[str, str]:
    """Environment that runs a process under libfaketime: frozen at ``at``, or at whatever
    ``file`` says whenever the process reads the clock (``FAKETIME_NO_CACHE``). The monotonic
    clock stays real, so timeouts, event loops and thread waits behave."""
    env = {
        "LD_PRELOAD": LIBFAKETIME,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": "UTC",
    }
    if file is not None:
        env.update(FAKETIME_TIMESTAMP_FILE=str(file), FAKETIME_NO_CACHE="1")
    else:
        assert at is not None
        env["FAKETIME"] = fake_time_text(at)
    return env


class FakeTime:
    """A libfaketime timestamp file: every process started with :meth:`env` sees its time."""

    def __init__(self, path: Path, now: int) -> None:
        self.path = path
        self.now = now
        self.set(now)

    def set(self, now: int) -> None:
        self.now = now
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(fake_time_text(now) + "\n")
        temporary.replace(self.path)  # a reader never sees half a file

    def env(self) -> dict[str, str]:
        return faketime_env(file=self.path)


def as_machine(identity_file: Path) -> list[str]:
    """The command prefix that runs a process on a machine of its own, the way a real clone
    is one: a private mount namespace whose ``/etc/machine-id`` is ``identity_file`` (the SDK
    and `volact client` read the identity from the OS only)."""
    mount = 'mount --bind "$0" /etc/machine-id && exec "$@"'
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", "--mount", *user, "sh", "-c", mount, str(identity_file)]


class ServedProcess:
    """A long-running `volact …` process whose stdout lines are collected as they come (and its
    stderr's too with ``stderr_lines``: the JSON log of `volact client run`; ``prefix``: a
    command it runs under, such as :func:`as_machine`'s)."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log: Path,
        prefix: list[str] | None = None,
        *,
        stderr_lines: bool = False,
    ) -> None:
        self.log = log
        with open(log, "ab") as stderr:
            self.process = subprocess.Popen(
                [*(prefix or []), sys.executable, "-m", "volact", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if stderr_lines else stderr,
                text=True,
                env=env,
            )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def read() -> None:
            with stdout:
                for line in stdout:
                    self._queue.put(line.rstrip("\n"))

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = START_TIMEOUT) -> str:
        """The first new stdout line that satisfies ``predicate`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if predicate(line):
                return line
        raise AssertionError(
            f"no matching line; got {self.lines!r}; stderr:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> int:
        """SIGTERM, then wait; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=START_TIMEOUT)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=START_TIMEOUT)
        self._reader.join(timeout=START_TIMEOUT)
        while not self._queue.empty():
            self.lines.append(self._queue.get())


@pytest.fixture
def processes() -> Iterator[list[ServedProcess]]:
    """Long-running processes started by a test; all are killed at teardown."""
    started: list[ServedProcess] = []
    yield started
    for process in started:
        process.kill()


def serve_host(
    started: list[ServedProcess],
    directory: Path,
    port: int,
    env: dict[str, str],
) -> ServedProcess:
    """Start `volact host serve` on 127.0.0.1:``port`` and wait until it listens."""
    served = ServedProcess(
        [
            "host",
            "serve",
            "--dir",
            str(directory),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--rate-limit",
            "0",
            "--log-level",
            "warning",
        ],
        clean_env(**env),
        directory.parent / f"{directory.name}-serve.log",
    )
    started.append(served)
    served.wait_for(lambda line: line.startswith("volact host listening on "))
    return served


@dataclass
class Machine:
    """A simulated client machine: its own state directory and machine identity (its own
    ``/etc/machine-id``, seen by its processes through :func:`as_machine`)."""

    name: str
    state_dir: Path

    @property
    def identity(self) -> str:
        return f"machine-{self.name}"

    def prefix(self) -> list[str]:
        """The prefix that runs a command on this machine."""
        identity_file = self.state_dir.parent / f"{self.state_dir.name}.machine-id"
        if not identity_file.exists():
            identity_file.parent.mkdir(parents=True, exist_ok=True)
            identity_file.write_text(self.identity + "\n")
        return as_machine(identity_file)

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(VOLACT_STATE_DIR=str(self.state_dir), **extra)

    def command(self, *args: str) -> list[str]:
        """`volact client ARGS` on this machine."""
        return [*self.prefix(), sys.executable, "-m", "volact", "client", *args]

    def run(
        self, *args: str, at: int | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`volact client ARGS` as a process, its clock frozen at ``at`` (real time if None)."""
        env = self.env(**(faketime_env(at=at) if at is not None else {}))
        done = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=env,
            timeout=START_TIMEOUT,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"volact client {' '.join(args)} failed:\n{done.stderr}")
        return done


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The process failed with exactly one `code: message` line on stderr and no traceback."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]
