"""End to end: real `volact host serve` and `volact client` processes, months of time under
libfaketime (the host follows a timestamp file, each client command runs at a frozen time)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.factories import T0, Vendor
from tests.ports import free_port
from volact.client.status import iso, to_datetime
from volact.core.durations import DAY, HOUR
from volact.core.policy import GroupPolicy

from .conftest import (
    FakeTime,
    Machine,
    ServedProcess,
    make_host_dir,
    one_line_error,
    serve_host,
)

pytestmark = pytest.mark.slow


def at(day: float) -> int:
    return T0 + int(day * DAY)


def when(timestamp: int) -> str | None:
    return iso(to_datetime(timestamp))


def status_of(machine: Machine, day: float) -> dict[str, Any]:
    return dict(json.loads(machine.run("status", "--json", at=at(day)).stdout))


def parallel(jobs: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        return [future.result() for future in [pool.submit(job) for job in jobs]]


@pytest.fixture
def descriptor_file(tmp_path: Path) -> tuple[Vendor, Path]:
    vendor = Vendor()
    path = tmp_path / "writer.json"
    path.write_text(vendor.descriptor().to_file())
    return vendor, path


def test_threshold_validity_renewal_graces_and_a_clock_set_back(
    tmp_path: Path, descriptor_file: tuple[Vendor, Path], processes: list[ServedProcess]
) -> None:
    vendor, descriptor = descriptor_file
    gvlk = vendor.descriptor().gvlk
    clock = FakeTime(tmp_path / "host-time", T0)
    port = free_port()
    host_dir = make_host_dir(vendor, tmp_path / "host", now=T0).directory  # threshold 5
    host = serve_host(processes, host_dir, port, clock.env())
    machines = [Machine(f"m{n}", tmp_path / f"m{n}") for n in range(1, 7)]

    def install(machine: Machine) -> None:
        machine.run("install-key", gvlk, "--product-config", str(descriptor), at=T0)
        if machine.name != "m6":  # m6 never gets a host
            machine.run("set-host", f"127.0.0.1:{port}", at=T0)

    parallel([lambda m=m: install(m) for m in machines])

    # Threshold 5: the first four are counted and refused, the fifth activates, then all do.
    for n, machine in enumerate(machines[:4], start=1):
        line = one_line_error(machine.run("activate", at=T0, check=False))
        assert line == f"count_insufficient: {n} of 5 clients so far; will retry in 2 hours"
    fifth = json.loads(machines[4].run("activate", "--json", at=T0).stdout)
    assert fifth["state"] == "licensed" and fifth["reason"] is None
    assert fifth["activated_at"] == when(T0)
    assert fifth["valid_until"] == when(T0 + 180 * DAY)  # activation + 180 days
    assert fifth["host"] == f"127.0.0.1:{port}" and fifth["host_id"] == "host-1"
    done = parallel([lambda m=m: m.run("activate", at=T0) for m in machines[:4]])
    assert all(
        d.stdout.startswith(f"Product activated successfully by 127.0.0.1:{port}") for d in done
    )

    # A renewal 8 days later moves valid-until to day 188.
    clock.set(at(8))
    renewed = json.loads(machines[0].run("activate", "--json", at=at(8)).stdout)
    assert renewed["valid_until"] == when(at(188))
    assert renewed["next_attempt_at"] == when(at(15))

    # The clock set 3 days back after that activation: clock_tampered.
    tampered = status_of(machines[0], 5)
    assert (tampered["state"], tampered["reason"]) == ("notification", "clock_tampered")

    # No host any more: the graces run out.
    assert host.stop() == 0
    line = one_line_error(machines[1].run("activate", at=at(200), check=False))
    assert line.startswith("host_unreachable: ")
    at_200 = status_of(machines[1], 200)
    assert (at_200["state"], at_200["grace_ends_at"]) == ("oot_grace", when(at(210)))
    at_225 = status_of(machines[1], 225)
    assert (at_225["state"], at_225["reason"]) == ("notification", "oot_grace_expired")

    # A client that never activated is in notification after its 30 days of OOB grace.
    never = status_of(machines[5], 31)
    assert (never["state"], never["reason"]) == ("notification", "oob_grace_expired")


def test_a_host_of_another_vendor_is_refused_and_the_client_stays_in_grace(
    tmp_path: Path, descriptor_file: tuple[Vendor, Path], processes: list[ServedProcess]
) -> None:
    vendor, descriptor = descriptor_file
    clock = FakeTime(tmp_path / "host-time", T0)
    port = free_port()
    impostor = Vendor()  # same vendor id, another root key: never certified by our vendor
    host_dir = make_host_dir(
        impostor, tmp_path / "rogue", now=T0, policy=GroupPolicy(threshold=1)
    ).directory
    serve_host(processes, host_dir, port, clock.env())
    machine = Machine("pc", tmp_path / "pc")
    machine.run("install-key", vendor.descriptor().gvlk, "--product-config", str(descriptor), at=T0)
    machine.run("set-host", f"127.0.0.1:{port}", at=T0)
    line = one_line_error(machine.run("activate", at=T0, check=False))
    assert line.startswith(f"invalid_host_certificate: 127.0.0.1:{port}: ")
    status = status_of(machine, 0)
    assert (status["state"], status["valid_until"]) == ("oob_grace", None)
    assert status["last_error"] == "invalid_host_certificate"


def test_the_run_service_retries_while_the_host_is_away_and_recovers(
    tmp_path: Path, descriptor_file: tuple[Vendor, Path], processes: list[ServedProcess]
) -> None:
    vendor, descriptor = descriptor_file
    clock = FakeTime(tmp_path / "time", T0)
    port = free_port()
    host_dir = make_host_dir(
        vendor, tmp_path / "host", now=T0, policy=GroupPolicy(threshold=1)
    ).directory
    host = serve_host(processes, host_dir, port, clock.env())
    machine = Machine("pc", tmp_path / "pc")
    machine.run("install-key", vendor.descriptor().gvlk, "--product-config", str(descriptor), at=T0)
    machine.run("set-host", f"127.0.0.1:{port}", at=T0)

    run = ServedProcess(
        ["client", "run", "--wake-interval", "0.05"],
        machine.env(**clock.env()),
        tmp_path / "run.log",
        stderr_lines=True,
        prefix=machine.prefix(),
    )
    processes.append(run)

    def record(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next JSON log record (every line is one, like the host's) that matches."""
        line = run.wait_for(lambda text: text.startswith("{") and predicate(json.loads(text)))
        return dict(json.loads(line))

    started = record(lambda r: r["message"].startswith("renewing in"))
    assert started["logger"] == "volact.client.run" and started["level"] == "info"

    def attempt() -> dict[str, Any]:
        return record(lambda r: r.get("product") == "writer-2026")

    first = attempt()
    assert (first["at"], first["outcome"], first["host"]) == (
        when(T0),
        "activated",
        f"127.0.0.1:{port}",
    )
    assert first["next_attempt_at"] == when(at(7))  # it says when it renews
    assert first["message"].startswith(f"writer-2026: activated by 127.0.0.1:{port}")

    clock.set(at(7))  # the renewal interval
    renewal = attempt()
    assert (renewal["at"], renewal["outcome"]) == (when(at(7)), "activated")
    assert renewal["valid_until"] == when(at(187))

    assert host.stop() == 0  # the host goes away
    clock.set(at(14))
    failed = attempt()
    assert (failed["at"], failed["outcome"], failed["code"]) == (
        when(at(14)),
        "failed",
        "host_unreachable",
    )
    assert failed["level"] == "warning" and "will retry in 2 hours" in failed["message"]
    assert failed["next_attempt_at"] == when(at(14) + 2 * HOUR)
    assert failed["message"].endswith(f"next attempt {when(at(14) + 2 * HOUR)}")

    # While the host restarts (many wake intervals) the clock stays at day 14: no attempt.
    host = serve_host(processes, host_dir, port, clock.env())  # back, same address
    clock.set(at(14) + 2 * HOUR)  # the retry interval after the failure
    recovered = attempt()
    assert (recovered["at"], recovered["outcome"]) == (when(at(14) + 2 * HOUR), "activated")
    assert run.stop() == 0  # SIGTERM stops it cleanly
    records = [json.loads(line) for line in run.lines if line.startswith("{")]
    assert records[-1]["message"] == "stopped"
    attempts = [r for r in records if r.get("product") == "writer-2026"]
    assert len(attempts) == 4  # nothing in between: no retry before the retry interval

    status = status_of(machine, 14.1)
    assert status["state"] == "licensed"
    assert status["valid_until"] == when(at(14) + 2 * HOUR + 180 * DAY)


def test_volact_client_status_from_a_process_matches_the_sdk(
    tmp_path: Path, descriptor_file: tuple[Vendor, Path]
) -> None:
    vendor, descriptor = descriptor_file
    machine = Machine("pc", tmp_path / "pc")
    machine.run("install-key", vendor.descriptor().gvlk, "--product-config", str(descriptor))
    done = machine.run("status")
    assert "License status:" in done.stdout
    missing = subprocess.run(
        machine.command("status", "--product", "nope"),
        capture_output=True,
        text=True,
        env=machine.env(),
        check=False,
    )
    assert one_line_error(missing).startswith("not_installed: ")
