"""`volact vendor …`: init, products, groups, keys, root key rotation, and bad input that must
give one clear line. Real processes where the process matters (init, export, key printing, one
error of each kind); the real entry point in-process for the rest."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import pytest

from tests.authority.helpers import GROUP, PRODUCT, assert_one_line_error, invoke, run
from volact.core.descriptor import load_descriptor
from volact.core.keys import ALPHABET, Channel, parse_key

KEY_LINE = re.compile(rf"^[{ALPHABET}]{{5}}(-[{ALPHABET}]{{5}}){{4}}\n$")


def _footer(token: str) -> dict[str, str]:
    part = token.split(".")[3]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_init_products_export_and_keys_in_processes(tmp_path: Path) -> None:
    d = str(tmp_path / "v")
    done = run("vendor", "init", "--id", "acme", "--name", "Acme Corp", "--dir", d)
    assert "vendor id:    acme" in done.stdout
    assert "root key id:  k4.pid." in done.stdout
    assert stat.S_IMODE((tmp_path / "v").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "v" / "vendor.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "v" / "root-keys" / "1.pem").stat().st_mode) == 0o600
    assert "PRIVATE" not in done.stdout + done.stderr

    run(
        *("vendor", "product", "add", PRODUCT, "--name", "Writer 2026", "--group", GROUP),
        *("--threshold", "3", "--validity", "90d", "--activation-url", "https://act.example"),
        *("--dir", d),
    )
    exported = run("vendor", "product", "export", PRODUCT, "--dir", d).stdout
    descriptor = load_descriptor(exported)
    assert (descriptor.vendor_id, descriptor.product, descriptor.group) == ("acme", PRODUCT, GROUP)
    assert descriptor.activation_url == "https://act.example"

    gvlk = run("vendor", "key", "gvlk", PRODUCT, "--dir", d)
    host = run("vendor", "key", "host", "--customer", "Contoso", "--groups", GROUP, "--dir", d)
    mak = run("vendor", "key", "mak", PRODUCT, "--count", "3", "--dir", d)
    for done in (gvlk, host, mak):
        assert KEY_LINE.match(done.stdout), done.stdout  # the key alone on stdout
    assert gvlk.stdout.strip() == descriptor.gvlk
    assert parse_key(host.stdout).channel is Channel.HOST
    assert parse_key(mak.stdout).channel is Channel.MAK


def test_products_groups_and_key_list(tmp_path: Path) -> None:
    d = str(tmp_path / "v")
    invoke("vendor", "init", "--id", "acme", "--dir", d)
    assert_one_line_error(invoke("vendor", "init", "--dir", d, check=False), "bad_request")
    add = ("vendor", "product", "add")
    invoke(*add, PRODUCT, "--name", "Writer", "--group", GROUP, "--threshold", "3", "--dir", d)
    # A second product of the group may repeat the group's policy, not change it.
    invoke(*add, "calc-2026", "--name", "Calc", "--group", GROUP, "--threshold", "3", "--dir", d)
    conflict = invoke(
        *add,
        "draw-2026",
        "--name",
        "Draw",
        "--group",
        GROUP,
        "--threshold",
        "10",
        "--dir",
        d,
        check=False,
    )
    line = assert_one_line_error(conflict, "bad_request")
    assert "already has threshold 3 (asked: 10)" in line
    assert "`volact vendor group set office-2026 --threshold 10`" in line
    assert_one_line_error(
        invoke(*add, PRODUCT, "--name", "Again", "--group", GROUP, "--dir", d, check=False),
        "bad_request",
    )

    changed = invoke("vendor", "group", "set", GROUP, "--threshold", "10", "--json", "--dir", d)
    assert json.loads(changed.stdout)["policy"]["threshold"] == 10
    invoke(*add, "draw-2026", "--name", "Draw", "--group", GROUP, "--threshold", "10", "--dir", d)
    too_long = invoke(
        "vendor", "group", "set", GROUP, "--validity", "1000d", "--dir", d, check=False
    )
    assert "outside the allowed range" in assert_one_line_error(too_long, "bad_request")
    missing = invoke("vendor", "group", "set", "nope", "--threshold", "2", "--dir", d, check=False)
    assert_one_line_error(missing, "not_found")
    assert "threshold          10" in invoke("vendor", "group", "list", "--dir", d).stdout

    listed = json.loads(invoke("vendor", "product", "list", "--json", "--dir", d).stdout)
    assert [p["product"] for p in listed] == ["calc-2026", "draw-2026", PRODUCT]
    assert invoke("vendor", "product", "list", "--dir", d).stdout.startswith("PRODUCT")
    invoke("vendor", "product", "export", PRODUCT, "-o", str(tmp_path / "w.json"), "--dir", d)
    assert load_descriptor((tmp_path / "w.json").read_text()).product == PRODUCT

    mak = invoke("vendor", "key", "mak", PRODUCT, "--count", "3", "--validity", "180d", "--dir", d)
    invoke("vendor", "key", "host", "--customer", "Contoso", "--groups", GROUP, "--dir", d)
    keys = json.loads(invoke("vendor", "key", "list", "--json", "--dir", d).stdout)
    by_channel = {k["channel"]: k for k in keys}
    assert by_channel["host"]["limit"] == 6 and by_channel["host"]["used"] == 0
    assert by_channel["mak"]["limit"] == 3 and by_channel["mak"]["validity"] == 180 * 86400
    assert "key" not in by_channel["mak"]  # secret texts only with --reveal
    table = invoke("vendor", "key", "list", "--dir", d).stdout
    assert mak.stdout.strip() not in table and parse_key(mak.stdout).serial in table
    assert mak.stdout.strip() in invoke("vendor", "key", "list", "--reveal", "--dir", d).stdout
    shown = invoke("vendor", "key", "show", parse_key(mak.stdout).serial, "--json", "--dir", d)
    assert json.loads(shown.stdout)["activations"] == []


def test_root_key_rotation(tmp_path: Path) -> None:
    d = str(tmp_path / "v")
    invoke("vendor", "init", "--id", "acme", "--dir", d)
    invoke("vendor", "product", "add", PRODUCT, "--name", "W", "--group", GROUP, "--dir", d)
    first = json.loads(invoke("vendor", "root-key", "list", "--json", "--dir", d).stdout)[0]
    before = load_descriptor(invoke("vendor", "product", "export", PRODUCT, "--dir", d).stdout)
    assert _footer(before.token)["kid"] == first["key_id"]

    added = json.loads(invoke("vendor", "root-key", "add", "--json", "--dir", d).stdout)
    listed = json.loads(invoke("vendor", "root-key", "list", "--json", "--dir", d).stdout)
    assert [k["state"] for k in listed] == ["active", "valid"]  # listed, not signing yet
    standby = load_descriptor(invoke("vendor", "product", "export", PRODUCT, "--dir", d).stdout)
    assert set(standby.root_keys) == {first["public_key"], added["public_key"]}
    assert _footer(standby.token)["kid"] == first["key_id"]  # the old key still signs
    invoke("vendor", "root-key", "activate", added["key_id"], "--dir", d)
    listed = json.loads(invoke("vendor", "root-key", "list", "--json", "--dir", d).stdout)
    assert [k["state"] for k in listed] == ["valid", "active"]
    assert stat.S_IMODE((tmp_path / "v" / "root-keys" / "2.pem").stat().st_mode) == 0o600

    after = load_descriptor(invoke("vendor", "product", "export", PRODUCT, "--dir", d).stdout)
    assert after.root_keys == (added["public_key"], first["public_key"])  # the active key first
    assert _footer(after.token)["kid"] == added["key_id"]  # the new key signs from now on
    assert before.gvlk == after.gvlk

    refused = invoke("vendor", "root-key", "retire", added["key_id"], "--dir", d, check=False)
    assert "active root key cannot be retired" in assert_one_line_error(refused, "bad_request")
    invoke("vendor", "root-key", "retire", first["key_id"], "--dir", d)
    retired = load_descriptor(invoke("vendor", "product", "export", PRODUCT, "--dir", d).stdout)
    assert retired.root_keys == (added["public_key"],)
    assert_one_line_error(
        invoke("vendor", "root-key", "retire", "k4.pid.nope", "--dir", d, check=False), "not_found"
    )


def test_wrong_channel_and_garbage_keys_in_processes(tmp_path: Path) -> None:
    d, h = str(tmp_path / "v"), str(tmp_path / "h")
    invoke("vendor", "init", "--id", "acme", "--dir", d)
    invoke("vendor", "product", "add", PRODUCT, "--name", "W", "--group", GROUP, "--dir", d)
    mak = invoke("vendor", "key", "mak", PRODUCT, "--count", "1", "--dir", d).stdout.strip()
    gvlk = invoke("vendor", "key", "gvlk", PRODUCT, "--dir", d).stdout.strip()

    line = assert_one_line_error(
        run("host", "init", "--key", mak, "--dir", h, check=False), "invalid_key"
    )
    assert "this is a MAK, not a host key" in line
    assert_one_line_error(
        run("host", "init", "--key", "BCDFG-HJKMP", "--dir", h, check=False), "invalid_key"
    )
    line = assert_one_line_error(
        invoke("host", "init", "--key", gvlk, "--dir", h, check=False), "invalid_key"
    )
    assert "this is a GVLK, not a host key" in line
    typo = mak[:-1] + ("B" if mak[-1] != "B" else "C")
    assert "checksum" in assert_one_line_error(
        invoke("host", "init", "--key", typo, "--dir", h, check=False), "invalid_key"
    )
    assert not Path(h).exists()  # nothing was made


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("vendor", "key", "mak", "nope", "--count", "1"), "product_unknown"),
        (("vendor", "key", "mak", PRODUCT, "--count", "1", "--validity", "forever"), "bad_request"),
        (("vendor", "key", "mak", PRODUCT, "--count", "0"), "bad_request"),
        (("vendor", "key", "host", "--customer", "C", "--groups", "nope"), "not_found"),
        (("vendor", "key", "show", "mak-000000000000000000000000"), "not_found"),
        (("vendor", "product", "add", "Bad Id", "--name", "N", "--group", GROUP), "bad_request"),
        (
            ("vendor", "product", "add", "x", "--name", "N", "--group", "g", "--srv-service", "x"),
            "bad_request",
        ),
        (
            ("vendor", "product", "add", "x", "--name", "N", "--group", "g", "--renewal", "1m"),
            "bad_request",
        ),
    ],
)
def test_bad_command_input(tmp_path: Path, args: tuple[str, ...], code: str) -> None:
    d = str(tmp_path / "v")
    invoke("vendor", "init", "--id", "acme", "--dir", d)
    invoke("vendor", "product", "add", PRODUCT, "--name", "W", "--group", GROUP, "--dir", d)
    assert_one_line_error(invoke(*args, "--dir", d, check=False), code)


GARBAGE = [
    (b"", "bad_request"),
    (b"\x00\xff\xfe garbage", "bad_request"),
    (b'{"format": "volact-mak-batch", "v": 1, "requ', "bad_request"),  # truncated
    (b'{"format": "volact-product-descriptor", "v": 1}', "bad_request"),
    (b"[1, 2]", "bad_request"),
    (b'{"format": "volact-mak-batch", "v": 7, "requests": []}', "unsupported_version"),
    (b'{"format": "volact-mak-batch", "v": 1, "requests": [{"v": 1}]}', "bad_request"),
    (b'{"format": "volact-mak-request", "v": 1, "request": "x"}', "bad_request"),
    (
        b'{"format": "volact-host-activation-request", "v": 2, "token": "v4.public.xx"}',
        "bad_request",
    ),
    (b'{"format": "volact-host-activation-request", "v": 2}', "bad_request"),
    # Version 1 carried the host key itself: refused for its version, before anything else.
    (b'{"format": "volact-host-activation-request", "v": 1}', "unsupported_version"),
    (b"[" * 100_000, "bad_request"),
]


def test_garbage_files_to_fulfil(tmp_path: Path) -> None:
    d = str(tmp_path / "v")
    invoke("vendor", "init", "--id", "acme", "--dir", d)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(GARBAGE[2][0])
    assert_one_line_error(
        run("vendor", "fulfil", str(garbage), "--dir", d, check=False), "bad_request"
    )
    for content, code in GARBAGE:
        garbage.write_bytes(content)
        assert_one_line_error(
            invoke("vendor", "fulfil", str(garbage), "--dir", d, check=False), code
        )
    missing = invoke("vendor", "fulfil", str(tmp_path / "missing"), "--dir", d, check=False)
    assert_one_line_error(missing, "not_found")
    assert_one_line_error(
        invoke("vendor", "fulfil", str(tmp_path), "--dir", d, check=False), "bad_request"
    )
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (5 * 1024 * 1024))
    assert_one_line_error(
        invoke("vendor", "fulfil", str(big), "--dir", d, check=False), "bad_request"
    )


def test_missing_vendor_dir_is_one_line(tmp_path: Path) -> None:
    done = run("vendor", "product", "list", "--dir", str(tmp_path / "none"), check=False)
    assert "volact vendor init" in assert_one_line_error(done, "not_found")
