"""Helpers for the vendor tests: vendor directories, hosts, requests, tampering, a real server."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.ports import free_port
from volact.authority.operations import Vendor
from volact.cli import main
from volact.core.protocol import ActivationRequest
from volact.core.states import State
from volact.host import certification
from volact.host.identity import HostFiles

VOLACT = [sys.executable, "-m", "volact"]
PRODUCT = "writer-2026"
GROUP = "office-2026"
STARTUP_TIMEOUT = 30.0


def volact_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VOLACT_") and key != "COVERAGE_PROCESS_START"
    }
    env.update(extra)
    return env


def run(
    *args: str, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m volact ARGS` and return the finished process (text output)."""
    done = subprocess.run(
        [*VOLACT, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        env=volact_env(),
        timeout=60,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"volact {' '.join(args)} failed:\n{done.stderr}")
    return done


def invoke(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `volact ARGS` in this process through the real entry point (``volact.cli.main``),
    for flows where a separate process adds nothing; same result shape as :func:`run`."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("VOLACT_")}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    finally:
        os.environ.update(saved)
    result = subprocess.CompletedProcess(["volact", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"volact {' '.join(args)} failed:\n{result.stderr}")
    return result


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: str) -> str:
    """The process failed with exactly one `code: message` line and no traceback."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{code}: "), done.stderr
    return lines[0]


@dataclass
class World:
    """A vendor directory with one product and its group."""

    path: Path

    def open(self) -> Vendor:
        return Vendor.open(self.path)


def make_world(path: Path, vendor_id: str = "acme", name: str = "Acme") -> World:
    with Vendor.init(path, vendor_id=vendor_id, vendor_name=name) as vendor:
        vendor.add_product(PRODUCT, name="Writer 2026", group=GROUP)
        vendor.add_product("paint-2026", name="Paint 2026", group="graphics-2026")
    return World(path)


def issue_host_key(world: World, hosts: int = 6, groups: tuple[str, ...] = (GROUP,)) -> str:
    with world.open() as vendor:
        return vendor.issue_host_key(
            customer="Contoso", groups=list(groups), host_limit=hosts
        ).key_text


def issue_mak(world: World, count: int, validity: int | None = None) -> str:
    with world.open() as vendor:
        return vendor.issue_mak(PRODUCT, count=count, validity=validity).key_text


def make_host(path: Path, key_text: str) -> HostFiles:
    files = HostFiles(path)
    certification.init_host(files, key_text)
    return files


def mak_request(
    key: str, *, cmid: str | None = None, fingerprint: str | None = None, now: int | None = None
) -> ActivationRequest:
    return ActivationRequest(
        product=PRODUCT,
        key=key,
        cmid=cmid or str(uuid.uuid4()),
        fingerprint=fingerprint or os.urandom(16).hex(),
        machine="pc-" + os.urandom(3).hex(),
        client_time=int(time.time()) if now is None else now,
        nonce=base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="),
        state=State.OOB_GRACE,
    )


def tamper_token(token: str, change: Callable[[dict[str, Any]], None]) -> str:
    """Change a PASETO v4.public payload and keep the old signature (what an editor would do)."""
    prefix = "v4.public."
    body, footer = token[len(prefix) :].split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    message, signature = raw[:-64], raw[-64:]
    payload = json.loads(message)
    change(payload)
    changed = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    encoded = base64.urlsafe_b64encode(changed + signature).decode().rstrip("=")
    return f"{prefix}{encoded}.{footer}"


def flip_byte(text: str, position: int) -> str:
    """Change one character of ``text`` to another base64url character."""
    replacement = "A" if text[position] != "A" else "B"
    return text[:position] + replacement + text[position + 1 :]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    world: World
    log: Path

    @property
    def stdout(self) -> str:
        return self.log.with_suffix(".out").read_text()

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


def start_server(world: World, *extra: str) -> Server:
    """Start `volact vendor serve` (its JSON log goes to a file) and wait until it answers."""
    port = free_port()
    log = world.path.parent / f"serve-{port}.log"
    with open(log, "wb") as log_file, open(log.with_suffix(".out"), "wb") as out_file:
        process = subprocess.Popen(
            [*VOLACT, "vendor", "serve", "--dir", str(world.path), "--port", str(port), *extra],
            env=volact_env(),
            stdout=out_file,
            stderr=log_file,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"vendor serve exited: {log.read_text()}")
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return Server(url, process, world, log)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("vendor serve did not become ready")
        time.sleep(0.05)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=15)
