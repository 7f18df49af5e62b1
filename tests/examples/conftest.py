"""Fixtures for the example app's tests: the app and a real `volact host serve` as processes.

The helpers for real processes under libfaketime come from the client tests
(``tests/client/conftest.py``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.client.conftest import (
    START_TIMEOUT,
    ServedProcess,
    as_machine,
    clean_env,
    faketime_env,
)
from tests.factories import Vendor

ROOT = Path(__file__).resolve().parents[2]
WRITER_APP = ROOT / "examples" / "writer_app.py"


@dataclass
class WriterApp:
    """``examples/writer_app.py`` on one simulated machine (a state dir and a machine id)."""

    descriptor: Path
    state_dir: Path
    workdir: Path
    machine_id: str = "writer-machine"

    def env(self, at: int) -> dict[str, str]:
        return clean_env(VOLACT_STATE_DIR=str(self.state_dir), **faketime_env(at=at))

    def prefix(self) -> list[str]:
        """Run on this simulated machine: its own /etc/machine-id (``as_machine``)."""
        identity_file = self.state_dir.parent / "machine-id"
        if not identity_file.exists():
            identity_file.write_text(self.machine_id + "\n")
        return as_machine(identity_file)

    def run(
        self, *args: str, at: int, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The app as a process, its clock frozen at ``at``."""
        return subprocess.run(
            [
                *self.prefix(),
                sys.executable,
                str(WRITER_APP),
                "--descriptor",
                str(self.descriptor),
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env(at),
            timeout=START_TIMEOUT,
            check=False,
        )

    def volact(self, *args: str, at: int) -> subprocess.CompletedProcess[str]:
        """`volact client ARGS` on the same machine (what its administrator runs)."""
        done = subprocess.run(
            [*self.prefix(), sys.executable, "-m", "volact", "client", *args],
            capture_output=True,
            text=True,
            env=self.env(at),
            timeout=START_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done


@pytest.fixture
def vendor() -> Vendor:
    return Vendor()


@pytest.fixture
def app(tmp_path: Path, vendor: Vendor) -> WriterApp:
    descriptor = tmp_path / "writer.json"
    descriptor.write_text(vendor.descriptor().to_file())
    workdir = tmp_path / "documents"
    workdir.mkdir()
    return WriterApp(descriptor, tmp_path / "state", workdir)


@pytest.fixture
def processes() -> Iterator[list[ServedProcess]]:
    """Long-running processes started by a test; all are killed at teardown."""
    started: list[ServedProcess] = []
    yield started
    for process in started:
        process.kill()
