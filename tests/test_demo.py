"""`volact demo` plays the whole story as a real process and cleans up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("VOLACT_STATE_DIR", None)
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
