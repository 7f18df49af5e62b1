"""`volact demo` plays the whole story as a real process and cleans up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    env = dict(os.environ)
    env.pop("VOLACT_STATE_DIR", None)
    env.pop("COLUMNS", None)  # piped, as `scripts/demo | less` is: rich's 80 columns
    result = subprocess.run(
        [sys.executable, "-m", "volact", "demo", "--pause", "0", "--keep", str(keep)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr + out
    assert "Traceback" not in result.stderr + out
    assert out.count("count_insufficient") >= 4
    assert "host count for office-2026: 5 of 5" in out
    assert "License status:           licensed" in out
    assert "office-2026: 5 of 5 clients (activating)" in out
    assert "Done in" in out and "host stopped" in out
    # The demo says that it compresses time: machines 1-4 licensed "at their next retry".
    assert "would wait for their next retry, 2 hours later" in out
    for n in range(1, 5):
        assert f"machine-{n} at its next retry (2 hours later): licensed" in out
    # Piped output never wraps a command in the middle of an argument: each is one line.
    commands = [line for line in out.splitlines() if line.startswith("$ volact ")]
    assert len(commands) >= 10
    assert any(
        line.startswith("$ volact host serve --port ")
        and line.endswith("--rate-limit 0 --admin-port 0 &")
        for line in commands
    )
    assert "$ volact vendor key host --customer Contoso --groups office-2026" in commands
    added = "$ volact vendor product add writer-2026 --name 'Acme Writer 2026' --group office-2026"
    assert len(added) > 80 and added in commands
    # The files are real: a vendor, a certified host with its database, five client states.
    assert (keep / "host" / "host.db").exists()
    assert len(list((keep / "clients").iterdir())) == 5
    # The host process was stopped (its port no longer answers is implied by a clean exit).


def test_demo_cleans_up_its_temporary_folder(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("VOLACT_STATE_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "volact", "demo", "--pause", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
