from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_run import run
from tests.host.helpers import make_host
from volact import __version__
from volact.core.errors import CODES


def test_version_as_a_real_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "volact", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"volact {__version__}"
    subprocess.run([sys.executable, "-c", "import volact.core"], check=True)


def test_explain_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    for code in CODES:
        status, out, _ = run(capsys, "explain", code)
        assert status == 0 and out.startswith(f"{code} (") and "What to do:" in out
    status, out, _ = run(capsys, "explain")
    assert status == 0 and all(code in out for code in CODES)
    status, out, _ = run(capsys, "explain", "--json")
    assert {item["code"] for item in json.loads(out)} == set(CODES)
    status, out, _ = run(capsys, "explain", "time_skew", "--json")
    assert json.loads(out)["code"] == "time_skew"


def test_unknown_code_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explain", "nope")
    assert status == 1 and out == ""
    assert err == (
        "not_found: no error code or other word 'nope' is known; `volact explain` lists the "
        "error codes\n"
    )
    status, out, err = run(capsys, "explain", "nope", "--json")
    assert json.loads(out)["error"]["code"] == "not_found"


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "vendor", "--bogus")
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("bad_request: No such option")
    assert "Traceback" not in err


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for args in [("--help",), ("vendor", "--help"), ("host", "--help"), ("client", "--help")]:
        status, out, _ = run(capsys, *args)
        assert status == 0 and "Usage:" in out


BLOCKER = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Absent())
"""


@pytest.mark.parametrize("module", ["jinja2", "prometheus_client"])
def test_the_host_extras_admin_modules_are_named_when_missing(tmp_path: Path, module: str) -> None:
    # The vendor extra has starlette, uvicorn and PyNaCl but not these two of the host extra:
    # `volact host serve` there said "internal: unexpected ModuleNotFoundError".
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(module=module))
    host = make_host(tmp_path / "host", int(time.time()))
    env = {key: value for key, value in os.environ.items() if not key.startswith("VOLACT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    serve = ["host", "serve", "--dir", str(host.directory), "--port", "0", "--admin-port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "volact", *serve],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "bad_request: `volact host serve` needs the host extra, which is not installed "
        f"(no module {module!r}): pip install 'volact[host]'"
    )
