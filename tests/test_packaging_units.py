"""The shipped systemd units (issue 19, point 5): `systemd-analyze verify` accepts each one, each
starts a command this package has with options it takes, each header creates the directories
the install steps need, and the vendor unit (it holds the root private key) is the most
confined."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from volact.cli import cli

ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted((ROOT / "packaging" / "systemd").glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_there_are_three_units() -> None:
    assert [unit.name for unit in UNITS] == [
        "volact-client.service",
        "volact-host.service",
        "volact-vendor.service",
    ]


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_analyze_verify_accepts_the_unit(unit: Path) -> None:
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_unit_runs_a_command_of_this_package(unit: Path) -> None:
    (command,) = directives(unit)["ExecStart"]
    words = command.split()
    assert words[:2] == ["/usr/bin/env", "volact"]  # found on the PATH, wherever it is installed
    group: click.Command = cli
    words = words[2:]
    while isinstance(group, click.Group):
        group = group.get_command(click.Context(group), words[0])  # type: ignore[assignment]
        assert group is not None
        words = words[1:]
    options = {opt for param in group.params for opt in getattr(param, "opts", [])}
    assert {word for word in words if word.startswith("--")} <= options


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_header_creates_the_user_and_directories_it_needs(unit: Path) -> None:
    found = directives(unit)
    header = unit.read_text().split("[Unit]", 1)[0]
    user = found["User"][0]
    (state,) = found["StateDirectory"]
    assert f"useradd --system --home-dir /var/lib/{state}" in header
    assert f"install -d -o {user} -g {user}" in header and f"/var/lib/{state}" in header
    config = re.search(r"--config (\S+)", found["ExecStart"][0])
    if config is not None:
        assert f"touch {config.group(1)}" in header


def test_the_docs_install_steps_create_the_host_directory() -> None:
    text = (ROOT / "docs" / "host.md").read_text()
    steps = text.split("## systemd", 1)[1]
    assert "install -d -o volact-host -g volact-host -m 0700 /var/lib/volact/host" in steps
    assert steps.index("install -d -o volact-host") < steps.index("volact host init")
    assert "touch /etc/volact/host.toml" in steps


def _exposure(unit: Path) -> float:
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert match is not None, done.stdout + done.stderr
    return float(match.group(1))


@needs_analyze
def test_the_vendor_unit_is_the_most_confined() -> None:
    scores = {unit.name: _exposure(unit) for unit in UNITS}
    vendor = scores.pop("volact-vendor.service")
    assert vendor <= min(scores.values()), scores
    assert vendor <= 1.5  # it was 3.7
