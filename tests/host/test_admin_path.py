"""The host admin's path made consistent (issue 19, point 5): read-only commands create no
database, `clients` says when its list is cut, `events` shows machine names and filters by CMID
and kind, `backup`, a config file for `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest

from volact.core.errors import CountInsufficient
from volact.host.service import HostService
from volact.store import SQLiteStore

from .helpers import CertifiedHost, body, cmid, make_host
from .test_cli import run


@pytest.fixture
def populated(tmp_path: Path) -> CertifiedHost:
    """A certified host whose store saw six clients, and a clone of client 0 (pc-clone)."""
    now = int(time.time())
    host = make_host(tmp_path / "host", now)

    async def fill() -> None:
        store = SQLiteStore(host.directory / "host.db")
        async with HostService.from_files(host.files, store, lambda: now) as service:
            for n in range(6):
                with contextlib.suppress(CountInsufficient):
                    await service.activate(body(n, now), "192.0.2.7")
            clone = body(0, now, fingerprint="c" * 32, machine="pc-clone.example.com")
            await service.activate(clone, "192.0.2.7")

    asyncio.run(fill())
    return host


@pytest.mark.parametrize("command", ["status", "clients", "events"])
def test_a_read_only_command_creates_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    host = make_host(tmp_path / "host", int(time.time()))
    status, out, err = run(capsys, "host", command, "--json", "--dir", str(host.directory))
    assert status == 0, err
    assert not list(host.directory.glob("host.db*"))  # not the database, nor its -wal or -shm
    if command == "status":
        assert json.loads(out)["groups"][0]["count"] == 0
    else:
        assert json.loads(out) == []


def test_clients_says_when_the_list_is_cut_and_gives_the_total(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(populated.directory)
    status, out, err = run(capsys, "host", "clients", "--limit", "4", "--dir", directory)
    assert status == 0
    assert len(out.splitlines()) == 5  # the header and four rows
    assert err.strip() == (
        "listed 4 of 6 clients (1 to 4); see the others with --limit and --offset"
    )
    _, out, err = run(
        capsys, "host", "clients", "--json", "--offset", "4", "--limit", "4", "--dir", directory
    )
    assert [entry["cmid"] for entry in json.loads(out)] == [cmid(4), cmid(5)]
    assert "listed 2 of 6 clients (5 to 6)" in err
    _, _, err = run(capsys, "host", "clients", "--dir", directory)
    assert err == ""  # the whole list: nothing to say


def test_events_show_machine_names_and_filter_by_cmid_and_kind(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(populated.directory)
    status, out, _ = run(capsys, "host", "events", "--cmid", cmid(0).upper(), "--dir", directory)
    assert status == 0
    lines = out.splitlines()
    assert lines and all(cmid(0) in line for line in lines)
    # One CMID with two machine names: what the troubleshooting guide asks the admin to find.
    assert any("pc-clone.example.com" in line for line in lines)
    assert any("pc-0.example.com" in line for line in lines)
    _, out, _ = run(
        capsys, "host", "events", "--json", "--cmid", cmid(0), "--kind", "activation_request",
        "--dir", directory,
    )  # fmt: skip
    found = json.loads(out)
    assert [event["machine"] for event in found] == ["pc-clone.example.com", "pc-0.example.com"]
    assert {event["kind"] for event in found} == {"activation_request"}
    status, _, err = run(capsys, "host", "events", "--cmid", "nope", "--dir", directory)
    assert status == 1 and err.startswith("bad_request: 'nope' is not a CMID")
