"""MAK activation from the client: online against a real `volact vendor serve`, and offline
with request files merged into a batch that `volact vendor fulfil` answers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.authority.helpers import (
    PRODUCT,
    Server,
    World,
    issue_mak,
    make_world,
    start_server,
    stop_server,
)

from .conftest import Machine, clean_env, one_line_error

pytestmark = pytest.mark.slow


@pytest.fixture
def vendor_world(tmp_path: Path) -> World:
    return make_world(tmp_path / "vendor")


@pytest.fixture
def vendor_service(vendor_world: World) -> Iterator[Server]:
    server = start_server(vendor_world, "--rate", "0")
    try:
        yield server
    finally:
        stop_server(server)


def descriptor_file(world: World, path: Path) -> Path:
    with world.open() as vendor:
        path.write_text(vendor.descriptor(PRODUCT).to_file())
    return path


def test_a_mak_activates_online_permanently(
    tmp_path: Path, vendor_world: World, vendor_service: Server
) -> None:
    descriptor = descriptor_file(vendor_world, tmp_path / "writer.json")
    mak = issue_mak(vendor_world, count=1)
    first, second = Machine("m1", tmp_path / "m1"), Machine("m2", tmp_path / "m2")
    for machine in (first, second):
        machine.run("install-key", mak, "--product-config", str(descriptor))
    done = first.run("activate", "--vendor", vendor_service.url)
    assert "licensed permanently" in done.stdout
    status = json.loads(first.run("status", "--json").stdout)
    assert (status["state"], status["channel"], status["valid_until"]) == ("licensed", "mak", None)
    assert status["host"] == vendor_service.url and status["next_attempt_at"] is None
    line = one_line_error(second.run("activate", "--vendor", vendor_service.url, check=False))
    assert line.startswith("key_exhausted: ")


def test_a_mak_activates_offline_through_a_merged_batch(
    tmp_path: Path, vendor_world: World
) -> None:
    descriptor = descriptor_file(vendor_world, tmp_path / "writer.json")
    mak = issue_mak(vendor_world, count=5)
    machines = [Machine(f"m{n}", tmp_path / f"m{n}") for n in (1, 2)]
    requests = []
    for machine in machines:
        machine.run("install-key", mak, "--product-config", str(descriptor))
        request = tmp_path / f"{machine.name}-request.json"
        done = machine.run("activate", "--offline-request", str(request))
        assert "Wrote the offline activation request" in done.stdout
        requests.append(str(request))
    batch = tmp_path / "batch.json"
    machines[0].run("merge-requests", *requests, "-o", str(batch))
    response = tmp_path / "response.json"
    fulfil = subprocess.run(
        [sys.executable, "-m", "volact", "vendor", "fulfil", str(batch), "-o", str(response)],
        capture_output=True,
        text=True,
        env=clean_env(VOLACT_VENDOR_DIR=str(vendor_world.path)),
        check=False,
    )
    assert fulfil.returncode == 0, fulfil.stderr
    for machine in machines:
        machine.run("activate", "--offline-response", str(response))
        status = json.loads(machine.run("status", "--json").stdout)
        assert (status["state"], status["valid_until"]) == ("licensed", None)
    # The response was used: installing it again needs a new request.
    again = one_line_error(
        machines[0].run("activate", "--offline-response", str(response), check=False)
    )
    assert again.startswith("bad_request: no offline request is pending")
