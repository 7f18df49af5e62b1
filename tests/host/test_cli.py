"""`volact host status/clients/events/block/unblock/dns-records`, and `serve`'s start-up errors."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_run import run
from volact.cli.host import resolve_host_dir
from volact.store import SQLiteStore

from .conftest import volact
from .helpers import GROUP, PRODUCT, CertifiedHost, cmid, make_host, populated_host

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def populated(tmp_path: Path) -> CertifiedHost:
    """A certified host whose store saw six clients (activated at the fifth) and a clone."""
    return populated_host(tmp_path / "host", int(time.time()))


def test_status_shows_certificate_counts_and_statistics(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "host", "status", "--dir", str(populated.directory))
    assert (status, err) == (0, "")
    assert "Host id:        host-test-1" in out
    assert "Activated:      yes" in out
    assert "cert-test-1 for Example Corp" in out
    assert f"{GROUP}: 6 of 5 clients (activating); validity 180d, renewal 7d, retry 2h" in out
    assert "7 total, 0 failed" in out
    assert "cloned_image" in out

    status, out, _ = run(capsys, "host", "status", "--json", "--dir", str(populated.directory))
    data = json.loads(out)
    assert data["activated"] is True and data["reason"] is None
    assert data["certificate"]["customer"] == "Example Corp"
    assert ISO.match(data["certificate"]["not_after"])
    assert data["groups"] == [
        {
            "group": GROUP,
            "count": 6,
            "threshold": 5,
            "activating": True,
            "validity": 180 * 86400,
            "renewal_interval": 7 * 86400,
            "retry_interval": 7200,
        }
    ]
    assert data["statistics"]["total"] == 7
    assert data["statistics"]["by_outcome"] == {"activated": 3, "below_threshold": 4}
    assert data["statistics"]["by_state"] == {"oob_grace": 7}
    assert data["recent_events"][0]["kind"] in {"cloned_image", "activation_request"}
    assert data["port"] == 7688 and data["database"].startswith("sqlite:///")


def test_status_of_an_uncertified_host_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = make_host(tmp_path / "host", int(time.time()), certified=False)
    status, out, _ = run(capsys, "host", "status", "--dir", str(host.directory))
    assert status == 0
    assert "Activated:      no: this host is not certified yet" in out
    status, out, _ = run(capsys, "host", "status", "--json", "--dir", str(host.directory))
    assert json.loads(out)["certificate"] is None


def test_clients_lists_every_client_with_iso_times(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "host", "clients", "--json", "--dir", str(populated.directory))
    assert status == 0
    listed: list[dict[str, Any]] = json.loads(out)
    assert [entry["cmid"] for entry in listed] == [cmid(n) for n in range(6)]
    first = listed[0]
    assert {"cmid", "group", "machine", "first_seen", "last_seen", "valid_until"} <= set(first)
    assert (first["group"], first["product"], first["machine"]) == (
        GROUP,
        PRODUCT,
        "pc-0.example.com",
    )
    assert first["fingerprint"] == "c" * 32  # the clone's, the latest seen
    for key in ("first_seen", "last_seen", "valid_until"):
        assert ISO.match(first[key])
    assert listed[1]["valid_until"] is None  # asked before the threshold, never since
    assert listed[1]["blocked"] is False

    status, out, _ = run(capsys, "host", "clients", "--dir", str(populated.directory))
    headers = ["CMID", "GROUP", "MACHINE", "REPORTED", "STATE", "LAST", "SEEN", "VALID", "UNTIL"]
    assert out.splitlines()[0].split() == headers
    assert len(out.splitlines()) == 7
    _, out, _ = run(capsys, "host", "clients", "--group", "nope", "--dir", str(populated.directory))
    assert out.strip() == "no clients"
    _, out, _ = run(
        capsys, "host", "clients", "--json", "--limit", "2", "--offset", "4", "--dir",
        str(populated.directory),
    )  # fmt: skip
    assert [entry["cmid"] for entry in json.loads(out)] == [cmid(4), cmid(5)]


def test_events_newest_first_with_kind_and_limit(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(populated.directory)
    _, out, _ = run(capsys, "host", "events", "--json", "--limit", "3", "--dir", directory)
    events = json.loads(out)
    assert len(events) == 3
    assert [event["id"] for event in events] == sorted((e["id"] for e in events), reverse=True)
    assert all(ISO.match(event["at"]) for event in events)
    _, out, _ = run(
        capsys, "host", "events", "--json", "--kind", "cloned_image", "--dir", directory
    )
    (cloned,) = json.loads(out)
    assert cloned["cmid"] == cmid(0) and cloned["details"]["new_fingerprint"] == "c" * 32
    _, out, _ = run(capsys, "host", "events", "--dir", directory)
    assert "host_started" in out.splitlines()[-1]


def test_block_and_unblock(populated: CertifiedHost, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(populated.directory)
    status, out, _ = run(capsys, "host", "block", cmid(3).upper(), "--dir", directory)
    assert (status, out.splitlines()[0]) == (0, f"blocked {cmid(3)} (1 group)")
    _, out, _ = run(capsys, "host", "clients", "--json", "--dir", directory)
    assert [e["cmid"] for e in json.loads(out) if e["blocked"]] == [cmid(3)]
    _, out, _ = run(capsys, "host", "status", "--json", "--dir", directory)
    assert json.loads(out)["groups"][0]["count"] == 5
    status, out, _ = run(capsys, "host", "unblock", cmid(3), "--json", "--dir", directory)
    assert json.loads(out) == {"cmid": cmid(3), "blocked": False, "groups": 1}
    _, out, _ = run(capsys, "host", "events", "--json", "--limit", "2", "--dir", directory)
    assert [e["kind"] for e in json.loads(out)] == ["client_unblocked", "client_blocked"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["host", "unblock", "00000000-0000-4000-8000-00000000dead"], "not_found"),
        (["host", "block", "00000000-0000-4000-8000-00000000dead"], "not_found"),
        (["host", "block", "not-a-cmid"], "bad_request"),
        (["host", "clients", "--db", "mysql://root:pw@db/x"], "bad_request"),
    ],
)
def test_admin_errors_are_one_line_without_a_traceback(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str], args: list[str], code: str
) -> None:
    status, out, err = run(capsys, *args, "--dir", str(populated.directory))
    assert status == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"{code}: ")
    assert "Traceback" not in err and "pw" not in err


def test_admin_commands_work_on_a_database_url_alone(
    populated: CertifiedHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{populated.directory / 'host.db'}"
    status, out, _ = run(capsys, "host", "clients", "--json", "--db", url, "--dir", "/nonexistent")
    assert status == 0 and len(json.loads(out)) == 6
    status, out, _ = run(capsys, "host", "block", cmid(5), "--db", url, "--dir", "/nonexistent")
    assert status == 0


def test_a_missing_host_directory_is_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("status", "clients", "events"):
        status, _, err = run(capsys, "host", command, "--dir", str(tmp_path / "none"))
        assert status == 1
        assert err.startswith("not_found: no host in") and "volact host init" in err


def test_dns_records_prints_zone_file_lines(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(populated.directory)
    status, out, _ = run(
        capsys, "host", "dns-records", "--domain", "corp.example", "--domain", "Lab.Example.",
        "--target", "kms1.corp.example", "--dir", directory,
    )  # fmt: skip
    assert status == 0
    assert out.splitlines() == [
        "_volact._tcp.corp.example. 3600 IN SRV 0 0 7688 kms1.corp.example.",
        "_volact._tcp.lab.example. 3600 IN SRV 0 0 7688 kms1.corp.example.",
    ]
    # The spellings of `serve`'s publishing flags work too.
    _, out, _ = run(
        capsys, "host", "dns-records", "--publish-dns", "corp.example", "--dns-target", "k.corp",
        "--weight", "100", "--dir", directory,
    )  # fmt: skip
    assert out == "_volact._tcp.corp.example. 3600 IN SRV 0 100 7688 k.corp.\n"
    _, out, _ = run(
        capsys, "host", "dns-records", "--json", "--domain", "corp.example", "--target", "h.corp",
        "--priority", "10", "--weight", "5", "--ttl", "600", "--port", "9000", "--dir", directory,
    )  # fmt: skip
    assert json.loads(out) == [
        {
            "owner": "_volact._tcp.corp.example.",
            "ttl": 600,
            "priority": 10,
            "weight": 5,
            "port": 9000,
            "target": "h.corp.",
            "line": "_volact._tcp.corp.example. 600 IN SRV 10 5 9000 h.corp.",
        }
    ]
    status, _, err = run(
        capsys,
        "host",
        "dns-records",
        "--domain",
        "bad domain!",
        "--target",
        "h",
        "--dir",
        directory,
    )
    assert status == 1 and err.startswith("bad_request: ")


def test_the_host_directory_comes_from_dir_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOLACT_HOST_DIR", str(tmp_path / "from-env"))
    assert resolve_host_dir(str(tmp_path / "given")) == tmp_path / "given"
    assert resolve_host_dir(None) == tmp_path / "from-env"
    monkeypatch.delenv("VOLACT_HOST_DIR")
    assert resolve_host_dir(None).name == "host"


def test_host_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "host", "--help")
    assert status == 0
    for command in ("serve", "status", "clients", "events", "block", "unblock", "dns-records"):
        assert command in out


@pytest.mark.slow
def test_serve_start_up_errors_are_one_line(tmp_path: Path) -> None:
    done = volact("host", "serve", "--dir", str(tmp_path / "none"), check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("not_found: no host in")

    host = make_host(tmp_path / "host", int(time.time()))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = volact(
            "host", "serve", "--dir", str(host.directory), "--bind", "127.0.0.1", "--port", port,
            check=False,
        )  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("bad_request: cannot listen on 127.0.0.1 port") and "in use" in last

    missing = f"sqlite:///{tmp_path / 'x' / 'y.db'}"
    done = volact("host", "serve", "--dir", str(host.directory), "--db", missing, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("storage_error: the database")
    assert "Traceback" not in done.stderr


def test_status_shows_the_last_dns_publishing_result_per_domain(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    from volact.core.host_machine import Event

    now = int(time.time())

    async def publish_events() -> None:
        store = SQLiteStore(populated.directory / "host.db")
        await store.open()
        try:
            failed = "dns_publish_failed"
            for event in (
                Event(failed, now - 60, details={"domain": "a.example", "reason": "timeout"}),
                Event("dns_published", now, details={"domain": "a.example"}),
                Event(failed, now, details={"domain": "b.example", "reason": "refused"}),
            ):
                await store.record_event(event)
        finally:
            await store.close()

    asyncio.run(publish_events())
    _, out, _ = run(capsys, "host", "status", "--dir", str(populated.directory))
    assert "  a.example: published at " in out
    assert "  b.example: FAILED (refused) at " in out
    _, out, _ = run(capsys, "host", "status", "--json", "--dir", str(populated.directory))
    results = json.loads(out)["dns_publishing"]
    assert [(r["domain"], r["ok"], r["reason"]) for r in results] == [
        ("a.example", True, None),
        ("b.example", False, "refused"),
    ]
