"""`volact client …` through the real entry point (in-process where no host is needed)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import Vendor
from volact.cli import cli, main
from volact.core.descriptor import load_descriptor

COMMANDS = [
    "install-key",
    "activate",
    "status",
    "set-host",
    "clear-host",
    "set-domain",
    "clear-domain",
    "set-dns-server",
    "clear-dns-server",
    "host-caching",
    "rearm",
    "diagnose",
    "run",
    "merge-requests",
]


def volact(*args: str) -> subprocess.CompletedProcess[str]:
    """`volact ARGS` in this process through ``volact.cli.main`` (no VOLACT_* from outside)."""
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
    return subprocess.CompletedProcess(["volact", *args], code, out.getvalue(), err.getvalue())


def one_line(done: subprocess.CompletedProcess[str], code: str) -> str:
    assert done.returncode == 1, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{code}: "), done.stderr
    return lines[0]


@pytest.fixture
def descriptor_file(tmp_path: Path) -> Path:
    path = tmp_path / "writer.json"
    path.write_text(Vendor().descriptor().to_file())
    return path


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "client")


def install(descriptor_file: Path, state: str) -> dict[str, object]:
    key = load_descriptor(descriptor_file.read_text()).gvlk
    done = volact(
        "client", "install-key", key, "--product-config", str(descriptor_file), "--dir", state
    )
    assert done.returncode == 0, done.stderr
    status = volact("client", "status", "--json", "--dir", state)
    assert status.returncode == 0, status.stderr
    return dict(json.loads(status.stdout))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_dir(command: str) -> None:
    done = volact("client", command, "--help")
    assert done.returncode == 0
    assert "--dir" in done.stdout or command == "merge-requests"
    group = cli.commands["client"]
    assert command in group.commands  # type: ignore[attr-defined]


def test_status_json_and_human_form(descriptor_file: Path, state: str) -> None:
    data = install(descriptor_file, state)
    for field in ("product", "state", "valid_until", "grace_ends_at", "reason", "cmid", "host"):
        assert field in data
    assert data["state"] == "oob_grace" and data["valid_until"] is None
    assert str(data["grace_ends_at"]).endswith("Z")
    human = volact("client", "status", "--dir", state)
    assert human.returncode == 0
    text = human.stdout
    for label in (
        "Name:",
        "Partial product key:",
        "Channel:",
        "License status:",
        "Grace ends:",
        "Client machine ID (CMID):",
        "Renewal interval:",
        "Retry interval:",
        "Last attempt:",
    ):
        assert label in text, text
    assert "oob_grace" in text and str(data["partial_key"]) in text


def test_nothing_installed_and_several_installed_are_said_clearly(
    descriptor_file: Path, state: str, tmp_path: Path
) -> None:
    assert "no product is installed" in one_line(
        volact("client", "status", "--dir", state), "not_installed"
    )
    install(descriptor_file, state)
    other = tmp_path / "paint.json"
    vendor = Vendor()
    paint = vendor.descriptor(product="paint-2026")
    other.write_text(paint.to_file())
    volact("client", "install-key", paint.gvlk, "--product-config", str(other), "--dir", state)
    line = one_line(volact("client", "status", "--dir", state), "bad_request")
    assert "2 products are installed (paint-2026, writer-2026)" in line
    assert "--product" in line
    named = volact("client", "status", "--product", "paint-2026", "--json", "--dir", state)
    assert json.loads(named.stdout)["product"] == "paint-2026"
    as_json = volact("client", "status", "--json", "--dir", state)
    assert json.loads(as_json.stdout)["error"]["code"] == "bad_request"


def test_discovery_settings_commands(descriptor_file: Path, state: str) -> None:
    install(descriptor_file, state)
    done = volact("client", "set-host", "kms.corp.example", "--dir", state)
    assert "kms.corp.example:7688" in done.stdout
    done = volact("client", "set-domain", "Corp.Example", "b.example", "--json", "--dir", state)
    assert json.loads(done.stdout)["settings"]["domains"] == ["corp.example", "b.example"]
    done = volact("client", "set-dns-server", "10.0.0.53", "--json", "--dir", state)
    assert json.loads(done.stdout)["settings"]["dns_server"] == "10.0.0.53:53"
    done = volact("client", "host-caching", "off", "--json", "--dir", state)
    assert json.loads(done.stdout)["settings"]["host_caching"] is False
    done = volact(
        "client", "set-host", "[::1]:9000", "--product", "writer-2026", "--json", "--dir", state
    )
    assert json.loads(done.stdout)["settings"]["manual_host"] == "[::1]:9000"
    for command in ("clear-host", "clear-domain", "clear-dns-server"):
        assert volact("client", command, "--dir", state).returncode == 0
    done = volact("client", "host-caching", "on", "--json", "--dir", state)
    assert json.loads(done.stdout)["settings"] == {
        "manual_host": None,
        "host_caching": True,
        "domains": [],
        "dns_server": None,
    }
    one_line(volact("client", "set-dns-server", "dns.example", "--dir", state), "bad_request")
    one_line(volact("client", "set-host", "h:0", "--dir", state), "bad_request")
    one_line(
        volact("client", "set-host", "h", "--product", "nope", "--dir", state), "not_installed"
    )
    assert volact("client", "host-caching", "maybe", "--dir", state).returncode == 2


def test_activate_without_a_host_fails_in_one_line_and_is_recorded(
    descriptor_file: Path, state: str
) -> None:
    install(descriptor_file, state)
    volact("client", "set-host", "127.0.0.1:1", "--dir", state)
    line = one_line(volact("client", "activate", "--dir", state), "host_unreachable")
    assert line.endswith("will retry in 2 hours")
    data = json.loads(volact("client", "status", "--json", "--dir", state).stdout)
    assert data["last_error"] == "host_unreachable" and data["state"] == "oob_grace"
    diagnosis = volact("client", "diagnose", "--dir", state)
    assert diagnosis.returncode == 1
    assert "tried 127.0.0.1:1: unreachable" in diagnosis.stdout
    assert "verdict: FAILED: host_unreachable" in diagnosis.stdout
    assert "Remedy: nothing accepts connections at 127.0.0.1:1" in diagnosis.stdout
    # Read-only: the check did not record an attempt (the same status as before it).
    after = json.loads(volact("client", "status", "--json", "--dir", state).stdout)
    assert after == data


def test_install_key_errors_and_rearm(descriptor_file: Path, state: str) -> None:
    one_line(volact("client", "install-key", "BV9CD-XXXXX", "--dir", state), "not_installed")
    one_line(
        volact(
            "client",
            "install-key",
            "BV9CD-K4MK9-W73DC-QKQ38-RVBT0",
            "--product-config",
            str(descriptor_file),
            "--dir",
            state,
        ),
        "invalid_key",
    )
    before = install(descriptor_file, state)
    rearmed = volact("client", "rearm", "--json", "--dir", state)
    data = json.loads(rearmed.stdout)
    assert data["cmid"] != before["cmid"] and data["rearms_left"] == 4
    human = volact("client", "rearm", "--dir", state)
    assert "Rearmed writer-2026: new CMID" in human.stdout


def test_offline_request_needs_a_mak(descriptor_file: Path, state: str, tmp_path: Path) -> None:
    install(descriptor_file, state)
    line = one_line(
        volact("client", "activate", "--offline-request", str(tmp_path / "r.json"), "--dir", state),
        "bad_request",
    )
    assert "MAK" in line


def test_client_status_imports_no_heavy_library(descriptor_file: Path, state: str) -> None:
    """The status path stays lean (SPEC §12): no httpx, starlette, uvicorn, dnspython or rich."""
    install(descriptor_file, state)
    program = (
        "import sys\n"
        "from volact.cli import main\n"
        "try:\n"
        f"    main(['client', 'status', '--json', '--dir', {state!r}])\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "heavy = {'httpx', 'httpcore', 'starlette', 'uvicorn', 'dns', 'rich', 'anyio'}\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & heavy), file=sys.stderr)\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("VOLACT_")}
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
