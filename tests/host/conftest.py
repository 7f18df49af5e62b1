"""Fixtures for the host tests: a certified host directory, a clock, the app in-process."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from volact.host.app import create_app
from volact.host.service import HostService
from volact.store import MemoryStore, SQLiteStore, Store

from .helpers import CertifiedHost, make_host


class Clock:
    """A settable clock (int Unix seconds) for the service."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(int(time.time()))


@pytest.fixture
def host(tmp_path: Path, clock: Clock) -> CertifiedHost:
    return make_host(tmp_path / "host", clock.now)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, host: CertifiedHost) -> Iterator[Store]:
    """The host's store; ``postgres`` (only when a test asks for it, indirectly) is a fresh
    schema on the test server (tests/scaleout/postgres.py), dropped at teardown."""
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "postgres":
        from tests.scaleout.postgres import fresh_schema
        from volact.store.postgres import PostgresStore

        with fresh_schema() as url:
            yield PostgresStore(url)
    else:
        yield SQLiteStore(host.directory / "host.db")


@pytest.fixture
async def service(host: CertifiedHost, store: Store, clock: Clock) -> AsyncIterator[HostService]:
    async with HostService.from_files(host.files, store, clock) as running:
        yield running


@pytest.fixture
async def client(service: HostService) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service, rate_limit=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://host.test") as http:
        yield http


# --- real `volact host serve` processes ---------------------------------------------------------

START_TIMEOUT = 30.0


class ServedHost:
    """A `volact host serve` process on 127.0.0.1 with a port of its own choosing."""

    def __init__(self, directory: Path, *extra: str, prefix: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.extra = extra
        self.prefix = prefix  # a command the host runs under, e.g. ("prlimit", "--nofile=256")
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None
        self.url = ""
        self.stderr_path = directory.parent / f"{directory.name}-serve.log"

    def start(self) -> ServedHost:
        stderr = open(self.stderr_path, "a", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "volact",
                "host",
                "serve",
                "--dir",
                str(self.directory),
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        stderr.close()
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None

        def read_lines() -> None:
            with stdout:
                for line in stdout:
                    lines.put(line)

        self.reader = threading.Thread(target=read_lines, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith("volact host listening on "):
                self.url = line.split(" on ", 1)[1].strip()
                return self
        self.kill()
        raise AssertionError(f"volact host serve did not start:\n{self.stderr_path.read_text()}")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._join()
        return status

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=START_TIMEOUT)
        self._join()

    def _join(self) -> None:
        # The reader closes stdout at end of file, which comes once the process is gone.
        if self.reader is not None:
            self.reader.join(timeout=START_TIMEOUT)


@pytest.fixture
def serve_host() -> Iterator[Callable[..., ServedHost]]:
    """Start `volact host serve` processes; every one is killed at teardown."""
    started: list[ServedHost] = []

    def start(directory: Path, *extra: str, prefix: tuple[str, ...] = ()) -> ServedHost:
        served = ServedHost(directory, *extra, prefix=prefix).start()
        started.append(served)
        return served

    yield start
    for served in started:
        served.kill()


def volact(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `volact` command as a process."""
    done = subprocess.run(
        [sys.executable, "-m", "volact", *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"volact {' '.join(args)} failed: {done.stderr}")
    return done
