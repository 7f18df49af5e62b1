"""Discovery through a real BIND 9 server: SRV records, failover, names resolved by the DNS
server set with `set-dns-server`, and what `volact client diagnose` prints."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns.bind import BindServer, Zone, running_bind
from tests.factories import Vendor
from tests.ports import free_port
from volact.core.policy import GroupPolicy

from .conftest import Machine, ServedProcess, make_host_dir, serve_host

pytestmark = [pytest.mark.slow, pytest.mark.dns]


@pytest.fixture
def ports() -> tuple[int, int]:
    """A port with an activation host on it, and one where nothing listens."""
    return free_port(), free_port()


@pytest.fixture
def bind(tmp_path: Path, ports: tuple[int, int]) -> Iterator[BindServer]:
    live, dead = ports
    zone = Zone(
        "corp.test",
        records=(
            f"_volact._tcp 300 IN SRV 0 0 {dead} gone.corp.test.",
            f"_volact._tcp 300 IN SRV 10 0 {live} kms.corp.test.",
            "gone 300 IN A 127.0.0.1",
            "kms 300 IN A 127.0.0.1",
        ),
    )
    with running_bind(tmp_path / "bind", (zone,)) as server:
        yield server


def test_a_client_finds_its_host_by_srv_through_the_dns_server_it_was_given(
    tmp_path: Path, bind: BindServer, ports: tuple[int, int], processes: list[ServedProcess]
) -> None:
    live, dead = ports
    vendor = Vendor()
    descriptor = tmp_path / "writer.json"
    descriptor.write_text(vendor.descriptor().to_file())
    host_dir = make_host_dir(
        vendor, tmp_path / "host", now=int(time.time()), policy=GroupPolicy(threshold=1)
    )
    serve_host(processes, host_dir.directory, live, {})

    machine = Machine("pc", tmp_path / "pc")
    machine.run("install-key", vendor.descriptor().gvlk, "--product-config", str(descriptor))
    machine.run("set-domain", "corp.test")
    machine.run("set-dns-server", f"127.0.0.1:{bind.port}")
    diagnosis = machine.run("diagnose", "--activate")
    out = diagnosis.stdout
    assert f"DNS server: 127.0.0.1:{bind.port}" in out
    assert "domains (set-domain): corp.test" in out
    assert "SRV _volact._tcp.corp.test: 2 records" in out
    assert f"tried gone.corp.test:{dead}: unreachable" in out  # priority 0 first, then failover
    assert f"tried kms.corp.test:{live}: ok" in out
    assert (
        out.strip().splitlines()[-1].startswith(f"verdict: OK: activated by kms.corp.test:{live}")
    )

    status = json.loads(machine.run("status", "--json").stdout)
    assert status["state"] == "licensed" and status["host"] == f"kms.corp.test:{live}"

    # Without the cached host, a domain without SRV records finds nothing, and says so.
    machine.run("host-caching", "off")
    machine.run("set-domain", "missing.test")
    failed = machine.run("diagnose", check=False)
    assert failed.returncode == 1
    assert "SRV _volact._tcp.missing.test: " in failed.stdout
    assert "verdict: FAILED: no_host_found" in failed.stdout
    # BIND serves no zone missing.test and does not recurse: it REFUSES, and the remedy says so.
    assert "REFUSED" in failed.stdout
    assert f"Remedy: the DNS server (127.0.0.1:{bind.port}) refused the query" in failed.stdout
