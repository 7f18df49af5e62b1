"""End to end through DNS: real `volact host serve` processes publish their SRV records into a
real BIND 9 (started here by ``tests.dns.bind``), and real `volact client` processes find them.

One named serves the whole module (starting it costs about a second); every test starts from an
empty ``_volact._tcp`` name in each dynamic zone. Every process a test starts is killed at teardown.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.client.conftest import (
    START_TIMEOUT,
    Machine,
    ServedProcess,
    clean_env,
    make_host_dir,
)
from tests.dns.bind import BindServer, running_bind
from tests.factories import Vendor
from tests.ports import free_port
from volact.core.policy import GroupPolicy
from volact.core.srv import SRVRecord
from volact.net.dns import query_srv

DOMAIN = "volact.test"
SRV_NAME = f"_volact._tcp.{DOMAIN}"
OTHER_DOMAIN = "other.test"  # the harness's second dynamic zone
POLL_TIMEOUT = 60.0  # generous: every wait polls, so only a failure takes this long


@pytest.fixture(scope="module")
def bind_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    with running_bind(tmp_path_factory.mktemp("bind")) as bind:
        yield bind


@pytest.fixture
def bind(bind_module: BindServer) -> BindServer:
    """The running named, with no SRV records left in its dynamic zones."""
    if bind_module.process.poll() is not None:
        pytest.fail(f"named exited; its log:\n{bind_module.log()[-3000:]}")
    for zone in (DOMAIN, OTHER_DOMAIN):
        bind_module.clear_srv(f"_volact._tcp.{zone}", zone)
    return bind_module


def volact(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`volact ARGS` as a process (the caller checks the exit status)."""
    return subprocess.run(
        [sys.executable, "-m", "volact", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=START_TIMEOUT,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{' '.join(done.args[3:])} failed:\n{done.stderr}"
    return done.stdout


@dataclass
class Host:
    """A `volact host serve` process that publishes itself into volact.test."""

    name: str
    directory: Path
    process: ServedProcess
    port: int = 0

    def wait_ready(self) -> Host:
        line = self.process.wait_for(lambda text: text.startswith("volact host listening on "))
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def kill(self) -> None:
        """SIGKILL: the host is gone at once, its SRV record stays (as after a crash)."""
        self.process.kill()

    def events(self, kind: str) -> list[dict[str, Any]]:
        found = ok(volact("host", "events", "--dir", str(self.directory), "--kind", kind, "--json"))
        return list(json.loads(found))

    def wait_for_event(self, kind: str, domain: str | None = None) -> dict[str, Any]:
        """The newest event of ``kind`` (for ``domain``, if given), polled through
        `volact host events` until it is there (bounded)."""
        deadline = time.monotonic() + POLL_TIMEOUT
        while time.monotonic() < deadline:
            found = [
                event
                for event in self.events(kind)
                if domain is None or event["details"].get("domain") == domain
            ]
            if found:
                return found[0]
            time.sleep(0.1)  # the pause between two polls
        raise AssertionError(f"{self.name}: no {kind} event; log:\n{self.process.log.read_text()}")


@dataclass
class DNSWorld:
    """One vendor and product, a BIND server, the hosts and client machines of one test."""

    tmp: Path
    bind: BindServer
    vendor: Vendor = field(default_factory=Vendor)
    processes: list[ServedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.descriptor = self.tmp / "writer.json"
        self.descriptor.write_text(self.vendor.descriptor().to_file())

    @property
    def dns_server(self) -> str:
        return f"127.0.0.1:{self.bind.port}"

    def start_host(
        self, name: str, *extra: str, port: int | None = None, key_file: Path | None = None
    ) -> Host:
        """Start a certified host (threshold 1) publishing into volact.test; does not wait."""
        directory = self.tmp / name
        make_host_dir(
            self.vendor,
            directory,
            now=int(time.time()),
            host_id=name,
            policy=GroupPolicy(threshold=1),
        )
        args = [
            "host", "serve", "--dir", str(directory), "--bind", "127.0.0.1",
            "--port", str(free_port() if port is None else port),
            "--rate-limit", "0", "--log-level", "warning",
            "--publish-dns", DOMAIN, "--dns-server", self.dns_server,
            "--tsig-key", str(key_file or self.bind.key_file), "--dns-target", "localhost",
            *extra,
        ]  # fmt: skip
        process = ServedProcess(args, clean_env(), self.tmp / f"{name}-serve.log")
        self.processes.append(process)
        return Host(name, directory, process)

    def hosts(self, *specs: tuple[str, tuple[str, ...]]) -> list[Host]:
        """Start several hosts at once (their start-ups overlap), then wait for each."""
        started = [self.start_host(name, *extra) for name, extra in specs]
        return [host.wait_ready() for host in started]

    def srv_records(self, domain: str = DOMAIN) -> set[SRVRecord]:
        result = query_srv(f"_volact._tcp.{domain}", server=self.bind.server, timeout=10.0)
        return set(result.records)

    def wait_for_records(self, expected: set[SRVRecord], domain: str = DOMAIN) -> None:
        """Poll named (bounded) until ``_volact._tcp.DOMAIN`` holds exactly ``expected``."""
        deadline = time.monotonic() + POLL_TIMEOUT
        found: set[SRVRecord] = set()
        while time.monotonic() < deadline:
            found = self.srv_records(domain)
            if found == expected:
                return
            time.sleep(0.05)  # the pause between two polls
        raise AssertionError(f"SRV records in {domain} {found} never became {expected}")

    def machine(self, name: str, *, host_caching: bool = True) -> Machine:
        """A client machine with the product installed that finds hosts in volact.test through
        the test's named (the real CLI: install-key, set-domain, set-dns-server)."""
        machine = Machine(name, self.tmp / "machines" / name)
        gvlk = self.vendor.descriptor().gvlk
        machine.run("install-key", gvlk, "--product-config", str(self.descriptor))
        machine.run("set-domain", DOMAIN)
        machine.run("set-dns-server", self.dns_server)
        if not host_caching:
            machine.run("host-caching", "off")
        return machine


@pytest.fixture
def world(tmp_path: Path, bind: BindServer) -> Iterator[DNSWorld]:
    built = DNSWorld(tmp_path, bind)
    yield built
    for process in built.processes:
        process.kill()


def activated_by(machine: Machine) -> str:
    """Activate `machine` (real CLI) and return the host (``localhost:PORT``) that answered."""
    data = json.loads(machine.run("activate", "--json").stdout)
    assert data["state"] == "licensed", data
    return str(data["host"])
