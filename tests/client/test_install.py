"""`pip install volact` without extras, as a vendor's desktop app gets it: the wheel of this
tree in a fresh venv (built and installed the way ``benchmarks/client_install.py`` does), the
SDK activating against a real host of the full install, and the commands of a missing extra
saying which extra to install."""

from __future__ import annotations

import importlib.util
import subprocess
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ServedProcess, clean_env, one_line_error, serve_host

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# What the SDK's install may bring, and nothing else (docs/integration.md says why each).
SDK_PACKAGES = {
    "volact",
    "cryptography",
    "cffi",
    "pycparser",
    "orjson",
    "dnspython",
    "platformdirs",
    "click",
}
MB = 1024 * 1024


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "client_install", ROOT / "benchmarks" / "client_install.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sdk_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The wheel, and a fresh venv with it installed without extras (its python)."""
    bench = _benchmark()
    work = tmp_path_factory.mktemp("install")
    wheel = bench.build_wheel(work / "dist")
    python = bench.fresh_venv(work / "venv")
    added = bench.installed_delta(python, str(wheel))
    return wheel, python, added


def test_the_sdk_install_is_small_and_brings_only_what_it_uses(sdk_venv) -> None:
    wheel, _, added = sdk_venv
    assert set(added["packages"]) == SDK_PACKAGES
    assert added["bytes"] <= 30 * MB
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
        licence = [name for name in names if name.endswith("licenses/LICENSE")]
        assert licence and b"Apache License" in archive.read(licence[0])
    assert "License-Expression: Apache-2.0" in text
    for system in ("POSIX :: Linux", "Microsoft :: Windows", "MacOS"):
        assert f"Classifier: Operating System :: {system}" in text
    assert "](docs/" not in text and "](https://github.com/volact/volact/blob/main/docs/" in text


def test_the_installed_sdk_activates_against_a_real_host(
    sdk_venv, tmp_path: Path, processes: list[ServedProcess]
) -> None:
    _, python, _ = sdk_venv
    bench = _benchmark()
    descriptor, host_dir, gvlk = bench.vendor_and_host(tmp_path)
    from tests.ports import free_port

    port = free_port()
    serve_host(processes, host_dir, port, clean_env())  # the full install (this venv)
    result = bench.activate_in(python, descriptor, tmp_path / "client", gvlk, f"127.0.0.1:{port}")
    assert result["state"] == "licensed" and result["usable"] is True
    # The installed SDK is the wheel's, not this tree's.
    where = subprocess.run(
        [str(python), "-c", "import volact, sys; print(volact.__file__)"],
        capture_output=True,
        text=True,
        env=bench.clean_env(),
        check=True,
    )
    assert str(python.parents[1]) in where.stdout and str(ROOT / "src") not in where.stdout
    status = subprocess.run(
        [str(python.parent / "volact"), "client", "status", "--dir", str(tmp_path / "client")],
        capture_output=True,
        text=True,
        env=bench.clean_env(),
        check=True,
    )
    assert "licensed" in status.stdout


def test_commands_of_a_missing_extra_say_which_extra_to_install(sdk_venv, tmp_path: Path) -> None:
    _, python, _ = sdk_venv
    bench = _benchmark()
    volact = str(python.parent / "volact")
    _, host_dir, _ = bench.vendor_and_host(tmp_path)
    for args, extra in [
        (["host", "serve", "--dir", str(host_dir), "--port", "0"], "host"),
        (["vendor", "serve", "--dir", str(tmp_path / "vendor"), "--port", "0"], "vendor"),
        (["demo"], "demo"),
    ]:
        done = subprocess.run(
            [volact, *args], capture_output=True, text=True, env=bench.clean_env(), check=False
        )
        line = one_line_error(done)
        assert line.startswith(f"bad_request: `volact {' '.join(args[:2])}"), line
        assert line.endswith(f"pip install 'volact[{extra}]'"), line
