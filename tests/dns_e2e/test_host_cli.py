"""`volact host serve`'s publishing flags are checked up front (one line, before binding);
`dns-records` prints what `serve` would publish; `status` labels its port and database plainly."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.cli_run import run
from tests.client.conftest import make_host_dir, one_line_error
from tests.dns.bind import make_key_file
from tests.factories import Vendor

from .conftest import volact


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "volact-host.key"
    make_key_file(path)
    return path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--publish-dns", "corp.example"],
            "bad_request: --publish-dns needs --dns-server IP[:PORT] and --tsig-key FILE",
        ),
        (
            ["--publish-dns", "corp.example", "--dns-server", "192.0.2.53"],
            "bad_request: --publish-dns needs --tsig-key FILE",
        ),
        (
            ["--publish-dns", "corp.example", "--tsig-key", "KEY"],
            "bad_request: --publish-dns needs --dns-server IP[:PORT]",
        ),
        (
            ["--dns-server", "192.0.2.53", "--tsig-key", "KEY"],
            "bad_request: --dns-server, --tsig-key apply only with --publish-dns DOMAIN",
        ),
        (["--weight", "3"], "bad_request: --weight applies only with --publish-dns DOMAIN"),
        (
            ["--publish-dns", "corp.example", "--dns-server", "192.0.2.53", "--tsig-key", "NONE"],
            "bad_request: cannot read the TSIG key file NONE: No such file or directory",
        ),
        (
            ["--publish-dns", "corp.example", "--dns-server", "192.0.2.53", "--tsig-key", "DIR"],
            "bad_request: DIR is a directory; a TSIG key file must be a regular file",
        ),
        (
            ["--publish-dns", "corp.example", "--dns-server", "192.0.2.53", "--tsig-key", "JUNK"],
            "bad_request: JUNK: TSIG key file has no 'key \"NAME\"",
        ),
        (
            ["--publish-dns", "corp.example", "--dns-server", "ns.corp.example", "--tsig-key",
             "KEY"],
            "bad_request: DNS server 'ns.corp.example' must be an IP address",
        ),
        (
            ["--publish-dns", "bad domain!", "--dns-server", "192.0.2.53", "--tsig-key", "KEY"],
            "bad_request: domain 'bad domain!' is not a valid DNS name",
        ),
        (
            ["--publish-dns", "corp.example", "--dns-server", "192.0.2.53", "--tsig-key", "KEY",
             "--srv-service", "volact"],
            "bad_request: --srv-service 'volact' must look like _volact._tcp",
        ),
    ],
)  # fmt: skip
def test_publishing_flags_are_checked_before_anything_is_opened(
    tmp_path: Path,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    expected: str,
) -> None:
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    names = {"KEY": key_file, "NONE": tmp_path / "none.key", "DIR": tmp_path, "JUNK": junk}
    args = [str(names[flag]) if flag in names else flag for flag in flags]
    expected = expected.replace("NONE", str(names["NONE"])).replace("DIR", str(tmp_path))
    expected = expected.replace("JUNK", str(junk))
    # The host directory does not even exist: the flags are checked first.
    status, out, err = run(capsys, "host", "serve", "--dir", str(tmp_path / "no-host"), *args)
    assert status == 1 and out == ""
    assert err.startswith(expected), err
    assert len(err.splitlines()) == 1


def test_the_default_target_must_be_a_fully_qualified_name(
    tmp_path: Path,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda name="": "buildbox")
    flags = ["--publish-dns", "corp.example", "--dns-server", "192.0.2.53:5353"]
    status, _, err = run(
        capsys, "host", "serve", "--dir", str(tmp_path), *flags, "--tsig-key", str(key_file)
    )
    assert status == 1
    assert err == (
        "bad_request: this machine's name 'buildbox' is not a fully qualified DNS name that "
        "clients can resolve; give --dns-target NAME\n"
    )


@pytest.mark.slow
def test_a_bad_flag_fails_before_the_port_is_bound(tmp_path: Path) -> None:
    host = make_host_dir(Vendor(), tmp_path / "host").directory
    with socket.socket() as busy:  # a taken port would be the error if serve bound first
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = volact(
            "host", "serve", "--dir", str(host), "--bind", "127.0.0.1", "--port", port,
            "--publish-dns", "corp.example", "--dns-server", "192.0.2.53",
            "--tsig-key", str(tmp_path / "missing.key"),
        )  # fmt: skip
    line = one_line_error(done)
    assert line.startswith("bad_request: cannot read the TSIG key file ")


def test_dns_records_prints_what_serve_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = make_host_dir(Vendor(), tmp_path / "host").directory
    status, out, _ = run(
        capsys, "host", "dns-records", "--dir", str(host), "--publish-dns", "a.example,B.example.",
        "--domain", "a.example", "--dns-target", "KMS1.a.example", "--srv-service", "_writer._tcp",
        "--priority", "10", "--weight", "3",
    )  # fmt: skip
    assert status == 0
    assert out.splitlines() == [
        "_writer._tcp.a.example. 3600 IN SRV 10 3 7688 kms1.a.example.",
        "_writer._tcp.b.example. 3600 IN SRV 10 3 7688 kms1.a.example.",
    ]
    _, out, _ = run(
        capsys, "host", "dns-records", "--dir", str(host), "--json", "--domain", "a.example",
        "--target", "h.a.example", "--port", "9000", "--ttl", "60",
    )  # fmt: skip
    [record] = json.loads(out)
    assert record["owner"] == "_volact._tcp.a.example."
    assert record["line"] == "_volact._tcp.a.example. 60 IN SRV 0 0 9000 h.a.example."


def test_status_labels_the_port_and_prints_the_database_url_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = make_host_dir(Vendor(), tmp_path / "host").directory
    status, out, _ = run(capsys, "host", "status", "--dir", str(host))
    assert status == 0
    lines = out.splitlines()
    assert f"Database:       sqlite:///{host / 'host.db'}" in lines
    assert "Default port:   7688 (host.json; `serve --port` overrides it)" in lines
    _, out, _ = run(capsys, "host", "status", "--json", "--dir", str(host))
    data = json.loads(out)
    assert data["database"] == f"sqlite:///{host / 'host.db'}" and data["port"] == 7688
    assert data["dns_publishing"] == []
