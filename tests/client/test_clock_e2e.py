"""A fast client clock, later corrected, against a real `volact host serve` at the real time:
`faketime -f '+1h' volact client activate`, then `volact client status` (issue 16, finding 1)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import Vendor
from tests.ports import free_port
from volact.core.policy import GroupPolicy

from .conftest import (
    LIBFAKETIME,
    START_TIMEOUT,
    Machine,
    ServedProcess,
    make_host_dir,
    serve_host,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(LIBFAKETIME).exists(), reason="needs libfaketime"),
]


def _client(machine: Machine, offset: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`volact client ARGS`, as under `faketime -f OFFSET` (None: the real clock): libfaketime
    preloaded with the offset, which is what the `faketime` wrapper sets up. The wrapper itself
    is not used: it makes a semaphore named by its PID and fails ("sem_open: File exists") when
    a killed run left one of that name behind, which a busy machine reusing PIDs meets."""
    fake = {} if offset is None else {
        "LD_PRELOAD": LIBFAKETIME, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "volact", "client", *args],
        capture_output=True,
        text=True,
        env=machine.env(**fake),
        timeout=START_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _status(machine: Machine, offset: str | None) -> tuple[str, str | None]:
    status = json.loads(_client(machine, offset, "status", "--json").stdout)
    return status["state"], status["reason"]


def test_an_activation_on_a_fast_clock_stays_licensed_at_the_real_time(
    tmp_path: Path, processes: list[ServedProcess]
) -> None:
    vendor = Vendor()
    descriptor = tmp_path / "writer.json"
    descriptor.write_text(vendor.descriptor().to_file())
    port = free_port()
    now = int(time.time())
    host_dir = make_host_dir(vendor, tmp_path / "host", now=now, policy=GroupPolicy(threshold=1))
    serve_host(processes, host_dir.directory, port, {})  # the host runs at the real time
    machine = Machine("dualboot", tmp_path / "dualboot")
    _client(
        machine, None, "install-key", vendor.descriptor().gvlk, "--product-config", str(descriptor)
    )
    _client(machine, None, "set-host", f"127.0.0.1:{port}")

    activated = _client(machine, "+1h", "activate")
    assert activated.stdout.startswith("Product activated successfully")
    assert _status(machine, None) == ("licensed", None)
    # A real rollback beyond the tolerance is still tampering.
    assert _status(machine, "-1d") == ("notification", "clock_tampered")
