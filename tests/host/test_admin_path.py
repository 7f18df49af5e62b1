"""The host admin's path made consistent (issue 19, point 5): read-only commands create no
database, `clients` says when its list is cut, `events` shows machine names and filters by CMID
and kind, `backup`, a config file for `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import time
from pathlib import Path

import pytest

from tests.cli_run import run
from volact.core.errors import CountInsufficient
from volact.host.service import HostService
from volact.store import SQLiteStore

from .helpers import CertifiedHost, body, cmid, make_host, populated_host


@pytest.fixture
def populated(tmp_path: Path) -> CertifiedHost:
    """A certified host whose store saw six clients, and a clone of client 0 (pc-clone)."""
    return populated_host(tmp_path / "host", int(time.time()), machine="pc-clone.example.com")


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


@pytest.mark.parametrize("command", ["block", "unblock"])
def test_blocking_before_the_first_serve_creates_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # Run as root before the service user's first `serve`, a root-owned host.db would stop the
    # host from starting, and a host that never served knows no client to block.
    host = make_host(tmp_path / "host", int(time.time()))
    full = "00000000-0000-4000-8000-000000000000"
    for given in (full, full[:8]):
        status, _, err = run(capsys, "host", command, given, "--dir", str(host.directory))
        assert status != 0
        assert "not_found" in err
    assert not list(host.directory.glob("host.db*"))


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


def test_backup_copies_the_database_consistently_and_privately(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "backups" / "host-copy.db"
    target.parent.mkdir()
    target.write_text("an older backup")  # replaced whole
    directory = str(populated.directory)
    status, out, err = run(capsys, "host", "backup", str(target), "--dir", directory)
    assert status == 0, err
    assert out.startswith(f"backed up {populated.directory / 'host.db'} to {target} (")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["host-copy.db"]  # no -wal, no temp

    async def listed(path: Path) -> list[str]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return [record.cmid for record in await store.clients()]
        finally:
            await store.close()

    assert asyncio.run(listed(target)) == [cmid(n) for n in range(6)]
    assert asyncio.run(listed(populated.directory / "host.db")) == [cmid(n) for n in range(6)]


def test_backup_while_the_host_writes(populated: CertifiedHost, tmp_path: Path) -> None:
    from volact.sql.backup import backup_sqlite

    now = int(time.time())

    async def write_and_back_up() -> int:
        store = SQLiteStore(populated.directory / "host.db")
        async with HostService.from_files(populated.files, store, lambda: now) as service:
            writes = [
                asyncio.create_task(service.activate(body(100 + n, now), "192.0.2.8"))
                for n in range(200)
            ]
            size = await asyncio.to_thread(backup_sqlite, store_path, tmp_path / "during.db")
            await asyncio.gather(*writes)
            return size

    store_path = populated.directory / "host.db"
    assert asyncio.run(write_and_back_up()) > 0

    async def count(path: Path) -> int:
        store = SQLiteStore(path)
        await store.open()
        try:
            return await store.client_total()
        finally:
            await store.close()

    copied = asyncio.run(count(tmp_path / "during.db"))
    assert 6 <= copied <= 206  # one consistent state, between before and after the writes
    assert asyncio.run(count(store_path)) == 206


def test_backup_into_a_shared_folder_follows_no_planted_link(
    populated: CertifiedHost, tmp_path: Path
) -> None:
    # Run as root into a folder others may write (/tmp, a shared mount), the temporary copy must
    # not be a name another user can plant a link at: it used to be `.NAME.PID.tmp`, opened with
    # O_TRUNC through links, and SQLite then wrote the copy into the link's target.
    import os

    from volact.sql.backup import backup_sqlite

    shared = tmp_path / "shared"
    shared.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("another file of root's")
    for pid in {os.getpid(), *range(os.getpid() - 2, os.getpid() + 3)}:
        (shared / f".copy.db.{pid}.tmp").symlink_to(victim)
    backup_sqlite(populated.directory / "host.db", shared / "copy.db")
    assert victim.read_text() == "another file of root's"
    assert (shared / "copy.db").is_file() and not (shared / "copy.db").is_symlink()


def test_backup_names_pg_dump_for_postgresql_and_creates_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = make_host(tmp_path / "host", int(time.time()))
    directory = str(host.directory)
    status, _, err = run(
        capsys, "host", "backup", str(tmp_path / "x.db"), "--dir", directory,
        "--db", "postgresql://volact:secret@db.example/volact",
    )  # fmt: skip
    assert status == 1 and "pg_dump" in err and "secret" not in err
    assert len(err.strip().splitlines()) == 1
    status, _, err = run(capsys, "host", "backup", str(tmp_path / "x.db"), "--dir", directory)
    assert status == 1 and err.startswith("not_found: no database at")
    assert not list(host.directory.glob("host.db*")) and not (tmp_path / "x.db").exists()


def test_the_readme_dns_records_example_works_without_a_fully_qualified_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import volact.host.publishing as publishing

    # A machine whose name has no domain part (this one may have one: pretend it does not).
    monkeypatch.setattr(socket, "getfqdn", lambda: "kms1")
    monkeypatch.setattr(socket, "gethostname", lambda: "kms1")
    made = publishing.manual_records(
        ("corp.example",), directory=tmp_path / "none", target=None, port=None,
        priority=0, weight=0, ttl=3600, srv_service=None,
    )  # fmt: skip
    assert made.lines == ["_volact._tcp.corp.example. 3600 IN SRV 0 0 7688 kms1.corp.example."]
    assert any("no fully qualified name" in note for note in made.notes)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("volact host dns-records"))
    args = line.split("#", 1)[0].split()[1:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLACT_")}
    env["VOLACT_HOST_DIR"] = str(tmp_path / "host")
    done = subprocess.run(
        [sys.executable, "-m", "volact", *args], capture_output=True, text=True, env=env,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"_volact\._tcp\.corp\.example\. 3600 IN SRV 0 0 7688 \S+\.\n", done.stdout)


def test_dns_records_takes_the_port_serve_listens_on_from_its_config(
    populated: CertifiedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "host.toml"
    config.write_text(
        '[serve]\nport = 9100\ndns-target = "kms9.corp.example"\npublish-dns = ["corp.example"]\n'
        'db = "memory://"\nrate-limit = 0\n'
    )
    directory = str(populated.directory)
    status, out, err = run(
        capsys, "host", "dns-records", "--config", str(config), "--dir", directory
    )
    assert status == 0, err
    assert out == "_volact._tcp.corp.example. 3600 IN SRV 0 0 9100 kms9.corp.example.\n"
    assert "host.json" not in err  # the port came from serve's file: nothing to warn about
    # A flag still wins; without --port or --config, a note says where the port came from.
    _, out, _ = run(
        capsys, "host", "dns-records", "--config", str(config), "--port", "7000", "--dir", directory
    )
    assert " 7000 kms9.corp.example." in out
    _, out, err = run(
        capsys, "host", "dns-records", "--domain", "corp.example", "--target", "k.corp.example",
        "--dir", directory,
    )  # fmt: skip
    assert " 7688 k.corp.example." in out
    assert err.startswith("note: port 7688 is host.json's; if `volact host serve` listens")
    config.write_text("[serve]\nnope = 1\n")
    status, _, err = run(capsys, "host", "dns-records", "--config", str(config), "--dir", directory)
    assert status == 1 and "has no setting 'nope'" in err


def test_events_filter_by_time_as_the_admin_api_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = 1_800_000_000  # 2027-01-15T08:00:00Z
    host = make_host(tmp_path / "host", start)
    moment = [start]

    async def fill() -> None:
        store = SQLiteStore(host.directory / "host.db")
        async with HostService.from_files(host.files, store, lambda: moment[0]) as service:
            for n in range(3):  # one request an hour
                moment[0] = start + n * 3600
                with contextlib.suppress(CountInsufficient):
                    await service.activate(body(n, moment[0]), "192.0.2.7")

    asyncio.run(fill())
    directory = str(host.directory)

    def requested(*filters: str) -> list[str]:
        status, out, err = run(
            capsys, "host", "events", "--json", "--kind", "activation_request", *filters,
            "--dir", directory,
        )  # fmt: skip
        assert status == 0, err
        return [event["cmid"] for event in json.loads(out)]

    assert requested() == [cmid(2), cmid(1), cmid(0)]
    assert requested("--since", "2027-01-15T09:00:00Z") == [cmid(2), cmid(1)]
    assert requested("--until", str(start + 3600)) == [cmid(1), cmid(0)]
    assert requested("--since", "2027-01-15T09:00", "--until", "2027-01-15T09:59:59Z") == [cmid(1)]
    assert requested("--since", "2027-01-16") == []
    status, _, err = run(capsys, "host", "events", "--since", "yesterday", "--dir", directory)
    assert status == 1
    assert err.startswith("bad_request: the --since parameter must be Unix seconds or an ISO 8601")
