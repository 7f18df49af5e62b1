"""The host key stays secret (issue 16, finding 5): an offline request proves the key without
holding it, request and response files are private, the key is given without the command line,
and a request of the old format (which held the key) is refused for its version."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.authority.helpers import (
    VOLACT,
    World,
    assert_one_line_error,
    invoke,
    issue_host_key,
    make_host,
    run,
    volact_env,
)
from volact import crypto
from volact.authority.operations import VIA_OFFLINE
from volact.core import offline
from volact.core.errors import InvalidKey
from volact.core.keys import parse_key
from volact.host import certification
from volact.host.identity import HostFiles


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _token_payload(request_text: str) -> str:
    """The readable payload of a request file's token (what anyone holding the file sees)."""
    token = json.loads(request_text)["token"]
    return crypto.unverified_payload(token).decode("utf-8")


def test_an_offline_request_proves_the_host_key_without_holding_it(
    world: World, tmp_path: Path
) -> None:
    key = issue_host_key(world)
    h, v = str(tmp_path / "host"), str(world.path)
    run("host", "init", "--key", key, "--dir", h)
    request_file, response_file = tmp_path / "request.json", tmp_path / "response.json"
    run("host", "activate", "--offline-request", str(request_file), "--dir", h)
    text = request_file.read_text()
    # Neither the file nor its token's payload holds the key, in any spelling.
    readable = text + _token_payload(text)
    body = key.replace("-", "")
    for spelling in (key, body, base64.b64encode(key.encode()).decode()):
        assert spelling not in readable
    assert _mode(request_file) == 0o600
    payload = json.loads(_token_payload(text))
    assert payload["key_serial"] == parse_key(key).serial and "key" not in payload

    run("vendor", "fulfil", str(request_file), "--output", str(response_file), "--dir", v)
    assert _mode(response_file) == 0o600
    done = run("host", "activate", "--offline-response", str(response_file), "--dir", h)
    assert done.stdout.startswith("certified by vendor acme")


def test_a_request_that_does_not_prove_the_key_is_refused(world: World, tmp_path: Path) -> None:
    key = issue_host_key(world)
    files = make_host(tmp_path / "host", key)
    # A stranger who knows the serial (it is in every certificate) but not the key.
    request = certification.make_host_request(files, now=int(time.time()))
    guessed = offline.make_host_proof(request, "BCDFG-HJKMP-QRTVW-XY234-6789B")
    forged = offline.sign_host_request(files.signing_key(), guessed)
    with world.open() as vendor, pytest.raises(InvalidKey, match="does not prove it"):
        vendor.certify_host(offline.read_host_request(forged.to_file()), via=VIA_OFFLINE)
    with world.open() as vendor:
        assert vendor.store.certification_count() == 0


def test_a_request_of_the_old_format_is_refused_for_its_version(
    world: World, tmp_path: Path
) -> None:
    key = issue_host_key(world)
    files = make_host(tmp_path / "host", key)
    signing_key = files.signing_key()
    old_payload = {
        "v": 1,
        "request_id": "6f1c2a0e-8d4b-4c55-9a43-2d1f0b7e9c11",
        "host_id": files.settings().host_id,
        "host_key": signing_key.public_key.paserk,
        "key": key,
        "machine": "old-host",
        "created_at": int(time.time()),
    }
    token = crypto.sign(signing_key, offline.HOST_REQUEST_KIND, old_payload)
    old = tmp_path / "old-request.json"
    old.write_text(json.dumps({"format": offline.HOST_REQUEST_FORMAT, "v": 1, "token": token}))
    done = invoke("vendor", "fulfil", str(old), "--dir", str(world.path), check=False)
    line = assert_one_line_error(done, "unsupported_version")
    assert "version 1" in line and "make a new request" in line.lower()
    with world.open() as vendor:
        assert vendor.store.certification_count() == 0


def test_the_host_key_can_come_from_stdin_a_file_or_the_environment(
    world: World, tmp_path: Path
) -> None:
    key = issue_host_key(world)
    serial = parse_key(key).serial

    from_stdin = run("host", "init", "--key", "-", "--dir", str(tmp_path / "a"), stdin=key.encode())
    assert serial in from_stdin.stdout
    key_file = tmp_path / "host.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    from_file = run("host", "init", "--key-file", str(key_file), "--dir", str(tmp_path / "b"))
    assert serial in from_file.stdout
    from_env = subprocess.run(
        [*VOLACT, "host", "init", "--dir", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        env=volact_env(VOLACT_HOST_KEY=key),
        timeout=60,
        check=False,
    )
    assert from_env.returncode == 0, from_env.stderr
    assert serial in from_env.stdout
    for name in "abc":
        assert HostFiles(tmp_path / name).settings().host_key == key

    nothing = run("host", "init", "--dir", str(tmp_path / "d"), check=False)
    assert "VOLACT_HOST_KEY" in assert_one_line_error(nothing, "bad_request")
    both = run(
        "host",
        "init",
        "--key",
        key,
        "--key-file",
        str(key_file),
        "--dir",
        str(tmp_path / "e"),
        check=False,
    )
    assert_one_line_error(both, "bad_request")
