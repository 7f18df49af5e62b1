"""The wheel carries the dashboard's templates and style sheet (nothing is fetched at run time)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from volact.host.admin import dashboard

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "volact" / "host" / "admin"

pytest.importorskip("hatchling")


@pytest.mark.slow
def test_the_wheel_ships_every_template_and_static_file(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("volact-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(
        path.relative_to(ROOT / "src").as_posix()
        for folder in ("templates", "static")
        for path in (PACKAGE / folder).iterdir()
    )
    assert shipped and set(shipped) <= names, set(shipped) - names


def test_every_template_compiles() -> None:
    env = dashboard.environment()
    for path in (PACKAGE / "templates").glob("*.html"):
        env.get_template(path.name)
