"""Only regular files are read: a FIFO, a device or a socket given where volact expects a file
is refused at once with one line (issue 17, finding 4).

The CLI tests run the real command in a subprocess with a generous timeout: before the rule
(4fecf46), opening the FIFO waited for a writer forever and these runs never ended.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from volact.core.errors import BadRequest, ConfigurationError, NotFound
from volact.fileio import read_bytes, read_text

# Far above what the refusal takes even on a loaded machine; only a hang reaches it.
HANG_TIMEOUT = 60


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    return path


def _volact(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VOLACT_")}
    env.update(
        VOLACT_HOST_DIR=str(tmp_path / "host"),
        VOLACT_VENDOR_DIR=str(tmp_path / "vendor"),
        VOLACT_STATE_DIR=str(tmp_path / "client"),
    )
    return subprocess.run(
        [sys.executable, "-m", "volact", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=HANG_TIMEOUT,
        check=False,
    )


def _refused_in_one_line(done: subprocess.CompletedProcess[str], path: Path) -> None:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "named pipe (FIFO)" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["vendor", "fulfil", "{path}"],
        ["client", "install-key", "VK7JG-NPHTM-C97JM-9MPGT-3V66T", "--product-config", "{path}"],
        ["host", "activate", "--offline-response", "{path}"],
    ],
    ids=["vendor-fulfil", "client-install-key", "host-activate"],
)
def test_a_fifo_is_refused_at_once_by_the_cli(
    tmp_path: Path, fifo: Path, command: list[str]
) -> None:
    done = _volact(tmp_path, *[part.format(path=fifo) for part in command])
    _refused_in_one_line(done, fifo)


def test_a_device_is_refused_not_read_forever(tmp_path: Path) -> None:
    done = _volact(tmp_path, "vendor", "fulfil", "/dev/zero")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "/dev/zero is a character device" in done.stderr


def test_the_rule_names_each_kind_of_special_file(tmp_path: Path, fifo: Path) -> None:
    with pytest.raises(BadRequest, match="named pipe"):
        read_bytes(fifo, what="request file")
    with pytest.raises(BadRequest, match="character device"):
        read_bytes(Path("/dev/null"), what="request file")
    with pytest.raises(BadRequest, match="a directory"):
        read_bytes(tmp_path, what="request file")
    listening = socket.socket(socket.AF_UNIX)
    try:
        listening.bind(str(tmp_path / "sock"))
        with pytest.raises(BadRequest, match="a socket"):
            read_bytes(tmp_path / "sock", what="request file")
    finally:
        listening.close()
    with pytest.raises(NotFound):
        read_bytes(tmp_path / "missing")


def test_a_symlink_to_a_regular_file_is_read_and_limits_hold(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"x" * 100)
    (tmp_path / "link.json").symlink_to(real)
    assert read_bytes(tmp_path / "link.json", limit=100) == b"x" * 100
    with pytest.raises(BadRequest, match="over 99 bytes"):
        read_bytes(real, limit=99)
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    with pytest.raises(BadRequest, match="not text"):
        read_text(tmp_path / "binary")


def test_a_tsig_key_fifo_is_a_configuration_error(fifo: Path) -> None:
    from volact.host.publishing import read_tsig_key

    with pytest.raises(ConfigurationError, match="named pipe"):
        read_tsig_key(str(fifo))


def test_a_fifo_as_the_admin_token_is_refused_at_once(tmp_path: Path) -> None:
    # The token is read by `volact host admin-token` and by the running host's admin listener
    # (at start and on every request), so it follows the one reading rule too.
    import time

    from tests.host.helpers import make_host

    host = make_host(tmp_path / "host", int(time.time()))
    token = host.directory / "admin.token"
    token.unlink(missing_ok=True)
    os.mkfifo(token)
    done = _volact(tmp_path, "host", "admin-token", "--dir", str(host.directory))
    _refused_in_one_line(done, token)
