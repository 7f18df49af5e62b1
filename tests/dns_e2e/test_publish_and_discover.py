"""Hosts publish their SRV records into a real BIND 9 by RFC 2136 + TSIG; real clients find
them through that server, fail over, honour priority and weight, and say what they tried."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest

from tests.client.conftest import one_line_error
from tests.dns.bind import make_key_file
from volact.core.srv import SRVRecord

from .conftest import SRV_NAME, DNSWorld, activated_by, ok, volact

pytestmark = [pytest.mark.dns, pytest.mark.slow]


def srv(port: int, priority: int = 0, weight: int = 0) -> SRVRecord:
    return SRVRecord(priority, weight, port, "localhost")


def test_two_hosts_publish_and_a_client_discovers_them_and_fails_over(world: DNSWorld) -> None:
    # "two" also publishes into a second zone (the flag repeated).
    one, two = world.hosts(("one", ()), ("two", ("--publish-dns", "other.test")))
    world.wait_for_records({srv(one.port), srv(two.port)})
    # "two" publishes its domains one after the other: wait for the second one too.
    world.wait_for_records({srv(two.port)}, "other.test")

    # dig, the admin's own check, sees both records with their ports.
    dig = shutil.which("dig") or "/usr/bin/dig"
    answer = subprocess.run(
        [dig, "@127.0.0.1", "-p", str(world.bind.port), "SRV", SRV_NAME, "+short"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert sorted(answer.split("\n")[:-1]) == sorted(
        [f"0 0 {one.port} localhost.", f"0 0 {two.port} localhost."]
    )
    published = one.wait_for_event("dns_published")
    assert published["details"]["domain"] == "volact.test"
    assert published["details"]["port"] == one.port
    for domain in ("volact.test", "other.test"):  # recorded after each update succeeded
        two.wait_for_event("dns_published", domain)
    status = ok(volact("host", "status", "--dir", str(two.directory))).splitlines()
    via = f"-> localhost:{two.port} via {world.dns_server})"
    for domain in ("volact.test", "other.test"):
        [line] = [line for line in status if line.startswith(f"  {domain}: ")]
        assert line.startswith(f"  {domain}: published at ")
        assert line.endswith(f"{via}; in DNS now")  # status asked the DNS server

    pc = world.machine("pc")
    first = activated_by(pc)
    assert first in {f"localhost:{one.port}", f"localhost:{two.port}"}

    # diagnose prints the SRV query, both records and the candidates (the cached host first).
    diagnose = pc.run("diagnose")
    lines = diagnose.stdout.splitlines()
    assert f"DNS server: {world.dns_server}" in lines
    assert "domains (set-domain): volact.test" in lines
    assert f"SRV {SRV_NAME}: 2 records" in lines
    for host in (one, two):
        assert f"    priority 0 weight 0 port {host.port} target localhost" in lines
    assert f"tried {first}: ok" in lines

    # The host it used (and cached) crashes: the cached host fails and the other one answers.
    used, other = (one, two) if first == f"localhost:{one.port}" else (two, one)
    used.kill()
    assert activated_by(pc) == f"localhost:{other.port}"

    # Both down: one clear line naming both hosts, no traceback.
    other.kill()
    line = one_line_error(pc.run("activate", check=False))
    assert line.startswith("host_unreachable: no activation host answered (tried ")
    assert f"localhost:{one.port}" in line and f"localhost:{two.port}" in line


def test_a_wrong_tsig_key_is_an_event_and_the_host_keeps_serving(world: DNSWorld) -> None:
    # Same key name and algorithm as the server's, another secret: named answers BADSIG.
    wrong_key = world.tmp / "wrong.key"
    make_key_file(wrong_key, name=world.bind.key.name)
    host = world.start_host("host", key_file=wrong_key).wait_ready()

    failed = host.wait_for_event("dns_publish_failed")
    assert failed["details"]["domain"] == "volact.test"
    assert failed["details"]["reason"] == "badsig"
    assert "secret differs" in failed["details"]["error"]
    assert world.srv_records() == set()

    # It keeps serving: health is fine, and a client that is told the host activates.
    health = httpx.get(f"http://127.0.0.1:{host.port}/v1/health", timeout=10).json()
    assert health["ok"] is True and health["activated"] is True
    pc = world.machine("pc")
    pc.run("set-host", f"127.0.0.1:{host.port}")
    assert activated_by(pc) == f"127.0.0.1:{host.port}"

    status = ok(volact("host", "status", "--dir", str(host.directory)))
    assert "  volact.test: FAILED (badsig) at " in status
    data = json.loads(ok(volact("host", "status", "--json", "--dir", str(host.directory))))
    [result] = data["dns_publishing"]
    assert (result["domain"], result["ok"], result["reason"]) == ("volact.test", False, "badsig")
    assert result["target"] == "localhost" and result["port"] == host.port
    assert host.process.stop() == 0  # SIGTERM: the publishing job stops with the host


def test_priority_then_weight_decide_which_host_clients_use(world: DNSWorld) -> None:
    # Priority 0: "heavy" (weight 5) and "light" (weight 0, so after every weighted host of its
    # priority, by RFC 2782 as volact reads it); priority 10: "backup", on a port of its choosing.
    heavy, light = world.hosts(
        ("heavy", ("--priority", "0", "--weight", "5")), ("light", ("--weight", "0"))
    )
    backup = world.start_host("backup", "--priority", "10", "--weight", "7", port=0).wait_ready()
    world.wait_for_records({srv(heavy.port, 0, 5), srv(light.port, 0, 0), srv(backup.port, 10, 7)})

    pc = world.machine("pc", host_caching=False)  # every activation starts from DNS
    for _ in range(3):
        assert activated_by(pc) == f"localhost:{heavy.port}"
    heavy.kill()
    assert activated_by(pc) == f"localhost:{light.port}"
    light.kill()
    assert activated_by(pc) == f"localhost:{backup.port}"
