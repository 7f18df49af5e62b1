"""A third-party exception converted into ours stays its cause (``raise … from exc``), so
``VOLACT_DEBUG=1`` shows it; without ``VOLACT_DEBUG`` the user still sees one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from volact import crypto
from volact.core.errors import BadRequest
from volact.fileio import read_json
from volact.net.dns import DNSServer


def test_converted_errors_keep_their_cause(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(BadRequest) as caught:
        read_json(tmp_path / "bad.json")
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)
    with pytest.raises(BadRequest) as caught:
        DNSServer.parse("not-an-ip")
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(crypto.KeyFormatError) as key:
        crypto.VerifyKey.from_paserk("k4.public.AAAA")  # 3 bytes, not 32
    assert isinstance(key.value.__cause__, ValueError)


def _install_key(config: Path, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "volact", "client", "install-key",
         "XXXXX-XXXXX-XXXXX-XXXXX-XXXXX", "--product-config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "VOLACT_STATE_DIR": str(state), **env},
    )  # fmt: skip


def test_volact_debug_shows_the_cause_and_plain_runs_one_line(tmp_path: Path) -> None:
    config = tmp_path / "product.json"
    config.write_text("{not json")
    plain = _install_key(config, tmp_path / "state")
    assert plain.returncode == 1
    assert plain.stderr.strip() == "bad_request: the product descriptor is not valid JSON"
    debug = _install_key(config, tmp_path / "state", VOLACT_DEBUG="1")
    assert debug.returncode == 1
    assert "json.decoder.JSONDecodeError" in debug.stderr
    assert "The above exception was the direct cause of the following exception" in debug.stderr
    assert debug.stderr.rstrip().endswith("BadRequest: the product descriptor is not valid JSON")
