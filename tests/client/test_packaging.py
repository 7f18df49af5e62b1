"""The systemd unit for `volact client run` runs the command this package ships."""

from __future__ import annotations

from pathlib import Path

from volact.cli import cli

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "volact-client.service"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_starts_the_renewal_service_in_its_state_directory() -> None:
    unit = directives(UNIT.read_text())
    command = unit["ExecStart"][0].split()
    assert command[:4] == ["/usr/bin/env", "volact", "client", "run"]
    directory = command[command.index("--dir") + 1]
    assert unit["Environment"] == [f"VOLACT_STATE_DIR={directory}"]
    assert unit["StateDirectory"] == ["volact/client"] and directory == "/var/lib/volact/client"
    assert unit["KillSignal"] == ["SIGTERM"]
    run = cli.commands["client"].commands["run"]  # type: ignore[attr-defined]
    options = {opt for param in run.params for opt in getattr(param, "opts", [])}
    assert "--dir" in options
