"""`volact host init` makes the admin token, `volact host admin-token` shows and rotates it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.cli_run import run
from tests.host.conftest import Clock
from tests.host.helpers import CertifiedHost
from volact.core import keys
from volact.host.admin.token import read_token, token_path


def test_host_init_makes_a_private_admin_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = keys.make_secret_key(keys.Channel.HOST, os.urandom(12)).text
    status, _, err = run(capsys, "host", "init", "--key", key, "--dir", str(tmp_path / "h"))
    assert status == 0, err
    path = token_path(tmp_path / "h")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = read_token(tmp_path / "h")
    assert token.startswith("vat_") and len(token) > 40
    # Initialising again (a new host key) keeps the token.
    key = keys.make_secret_key(keys.Channel.HOST, os.urandom(12)).text
    run(capsys, "host", "init", "--key", key, "--dir", str(tmp_path / "h"))
    assert read_token(tmp_path / "h") == token


def test_admin_token_prints_makes_and_rotates(
    host: CertifiedHost, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(host.directory)
    status, out, err = run(capsys, "host", "admin-token", "--dir", directory)
    assert status == 0 and "new admin token written" in err  # an older host had none
    first = out.strip()
    assert run(capsys, "host", "admin-token", "--dir", directory)[1].strip() == first
    status, out, _ = run(capsys, "host", "admin-token", "--rotate", "--json", "--dir", directory)
    rotated = json.loads(out)
    assert status == 0 and rotated["new"] is True and rotated["token"] != first
    assert read_token(host.directory) == rotated["token"]
    assert stat.S_IMODE(token_path(host.directory).stat().st_mode) == 0o600


def test_admin_token_without_a_host_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "host", "admin-token", "--dir", str(tmp_path / "none"))
    assert status != 0 and err.strip().startswith("not_found:") and len(err.splitlines()) == 1
    assert not token_path(tmp_path / "none").exists()


SERVICE_USER = 23405  # the host's service user (volact-host) in this test


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_rotating_as_root_leaves_the_token_to_the_hosts_user(
    host: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    # `sudo volact host admin-token --rotate` on a host directory of the service user made a
    # root-owned 0600 token: the running host could no longer read it (every admin request
    # failed), and the next start stopped there.
    os.chown(host.directory, SERVICE_USER, SERVICE_USER)
    status, _, err = run(capsys, "host", "admin-token", "--rotate", "--dir", str(host.directory))
    assert status == 0, err
    made = token_path(host.directory).stat()
    assert (made.st_uid, made.st_gid) == (SERVICE_USER, SERVICE_USER)
    assert stat.S_IMODE(made.st_mode) == 0o600  # its owner, the host's user, reads it
