"""`volact host serve --config FILE` (issue 19, point 5): a TOML file's [serve] table sets any
flag of `serve` by name (DNS publishing, TSIG and the limits included), and flags given on the
command line override it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from tests.cli_run import run
from tests.ports import free_port
from volact.cli.host import serve
from volact.cli.host_config import load, settable
from volact.core.errors import BadRequest, ConfigurationError

from .conftest import START_TIMEOUT
from .helpers import make_host


def test_every_flag_of_serve_can_be_set_in_the_file() -> None:
    # Derived from the command itself: a flag added to `serve` (a limit) is covered at once.
    flags = {
        flag[2:]
        for param in serve.params
        if isinstance(param, click.Option) and param.name not in ("help",)
        for flag in param.opts
        if flag.startswith("--") and flag != "--config"
    }
    assert flags and set(settable(serve)) == flags
    assert {"port", "db", "rate-limit", "publish-dns", "dns-server", "tsig-key"} <= flags


def test_the_file_maps_onto_the_flags(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text(
        "[serve]\n"
        "port = 9000\n"
        'db = "sqlite:////srv/host.db"\n'
        "rate_limit = 5.5\n"
        'publish-dns = "corp.example"\n'
        'dns-server = "10.0.0.53"\n'
        'tsig-key = "/etc/volact/volact-host.key"\n'
    )
    assert load(serve, config) == {
        "port": 9000,
        "database_url": "sqlite:////srv/host.db",
        "rate_limit": 5.5,
        "publish_domains": ["corp.example"],
        "dns_server": "10.0.0.53",
        "tsig_key": "/etc/volact/volact-host.key",
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[serve]\nnope = 1\n", "has no setting 'nope'"),
        ("port = 1\n", "unknown key or table 'port'"),
        ("[serve\n", "is not valid TOML"),
        ("[serve]\nport = 1\nport-x = 2\n", "has no setting 'port-x'"),
        ("[serve]\nrate-limit = 1\nrate_limit = 2\n", "sets 'rate_limit' twice"),
    ],
)
def test_a_bad_file_is_one_clear_error(tmp_path: Path, text: str, error: str) -> None:
    config = tmp_path / "host.toml"
    config.write_text(text)
    with pytest.raises(ConfigurationError, match=error):
        load(serve, config)


def test_a_fifo_as_the_config_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.toml")
    with pytest.raises(BadRequest, match="named pipe"):
        load(serve, tmp_path / "pipe.toml")


def test_dns_and_tsig_settings_come_from_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "host.toml"
    missing = tmp_path / "none.key"
    config.write_text(
        f'[serve]\npublish-dns = ["corp.example"]\ndns-server = "127.0.0.1:53"\n'
        f'tsig-key = "{missing}"\n'
    )
    status, out, err = run(
        capsys, "host", "serve", "--config", str(config), "--dir", str(tmp_path / "no-host")
    )
    assert status == 1 and out == ""
    assert err.startswith(f"bad_request: cannot read the TSIG key file {missing}"), err
    # A flag given on the command line wins over the file.
    status, _, err = run(
        capsys, "host", "serve", "--config", str(config), "--dns-server", "not an address",
        "--dir", str(tmp_path / "no-host"),
    )  # fmt: skip
    assert status == 1 and "not an address" in err and "TSIG" not in err


def _listening(args: list[str], log: Path) -> tuple[subprocess.Popen[str], str]:
    with open(log, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "volact", "host", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    for line in process.stdout:  # the first line is the ready line (or the process ended)
        if line.startswith("volact host listening on "):
            return process, line.split(" on ", 1)[1].strip()
        assert time.monotonic() < deadline
    process.kill()
    process.wait(timeout=START_TIMEOUT)
    process.stdout.close()
    raise AssertionError(f"serve did not start:\n{log.read_text()}")


def test_serve_listens_where_the_file_says_unless_a_flag_overrides(tmp_path: Path) -> None:
    host = make_host(tmp_path / "host", int(time.time()))
    port = free_port()
    config = tmp_path / "host.toml"
    config.write_text(
        f'[serve]\nbind = "127.0.0.1"\nport = {port}\nrate-limit = 0\nlog-level = "warning"\n'
        f'db = "memory://"\n'
    )
    common = ["--config", str(config), "--dir", str(host.directory)]
    for extra, expected in (([], port), (["--port", "0"], None)):
        process, url = _listening([*common, *extra], tmp_path / "serve.log")
        try:
            listening_port = int(url.rsplit(":", 1)[1])
            assert url.startswith("http://127.0.0.1:")
            if expected is not None:
                assert listening_port == expected
            else:
                assert listening_port != port  # --port 0 won: a free port of its own
        finally:
            process.terminate()
            process.wait(timeout=START_TIMEOUT)
            assert process.stdout is not None
            process.stdout.close()
    assert not (host.directory / "host.db").exists()  # db = "memory://" from the file
