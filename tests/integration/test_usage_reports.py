"""Signed usage reports (issue 20): a host's hash-chained usage log on SQLite and PostgreSQL
(two hosts sharing one database), the report a vendor verifies, and every tampering refused
with its place named: an event deleted, two reordered, a count edited, the chain re-hashed, a
gap between consecutive reports."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.authority.helpers import PRODUCT, World, invoke, issue_host_key, make_host
from tests.factories import request
from tests.integration.helpers import certify
from tests.scaleout.postgres import fresh_schema
from volact.core import usage
from volact.core.durations import DAY
from volact.core.errors import BadRequest
from volact.crypto import VerifyKey
from volact.host.identity import HostFiles
from volact.host.service import HostService
from volact.host.usage import export_report, record_usage
from volact.store import open_store

GROUP = "office-2026"


def _next_month() -> int:
    """The start of the next UTC month (certificates are issued now, valid from yesterday)."""
    today = datetime.now(UTC)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


START = _next_month()
MONTH = usage.day_of(START)[:7]


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def serve_day(
    files: HostFiles, url: str, clock: Clock, cmids: list[str], vendor_id: str = "acme"
) -> None:
    """The real host service on the real store answers one activation per CMID at ``clock``."""

    async def run() -> None:
        service = HostService.from_files(files, open_store(url), clock, maintenance_interval=0)
        service.certificate_check_interval = 0
        await service.start()
        try:
            for cmid in cmids:
                body = request(vendor_id, PRODUCT, GROUP, cmid=cmid, client_time=clock.now)
                await service.activate(body.to_json(), "10.0.0.1")
        finally:
            await service.stop()

    asyncio.run(run())


def month_of_usage(files: HostFiles, url: str, clients: int) -> list[str]:
    """``clients`` CMIDs over December: each asks on its first day and weekly after; the log
    is recorded after each day. Returns the CMIDs."""
    cmids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(clients)]
    clock = Clock(START)
    for day in range(31):
        clock.now = START + day * DAY + 3600
        asking = [c for n, c in enumerate(cmids) if day >= n % 7 and (day - n % 7) % 7 == 0]
        serve_day(files, url, clock, asking)
        record_usage(files, url, now=clock.now + 60)
    return cmids


def root_keys(world: World) -> list[VerifyKey]:
    with world.open() as vendor:
        return [VerifyKey.from_paserk(key) for key in vendor.listed_root_keys()]


@pytest.fixture
def certified(vendor_world: World, tmp_path: Path) -> tuple[World, HostFiles]:
    key = issue_host_key(vendor_world, hosts=2)
    files = make_host(tmp_path / "host", key)
    certify(vendor_world, files)
    return vendor_world, files


def _edited(report: usage.Report, change: Any) -> usage.Report:
    data = report.to_json()
    change(data)
    return usage.read_report(json.dumps(data))


def test_a_month_on_sqlite_verifies_and_every_tampering_is_refused_with_its_place(
    certified: tuple[World, HostFiles], tmp_path: Path
) -> None:
    world, files = certified
    url = files.database_url
    month_of_usage(files, url, clients=40)
    report = export_report(files, url, start=START, end=START + 31 * DAY, now=START + 31 * DAY)
    keys = root_keys(world)
    usage.verify_report(usage.read_report(report.to_file()), keys)
    december = report.counted["monthly"][GROUP][MONTH]
    assert december == {"distinct": 40, "peak": 6}  # 40 clients, at most ceil(40 / 7) a day
    assert report.counted["daily"][GROUP][f"{MONTH}-01"] == 6

    def refused(change: Any) -> str:
        with pytest.raises(usage.ReportRefused) as raised:
            usage.verify_report(_edited(report, change), keys)
        return raised.value.message

    assert refused(lambda d: d["events"].pop(10)) == "event 11 is missing from the chain (deleted)"

    def swap(d: dict[str, Any]) -> None:
        events = d["events"]
        events[5][1:6], events[6][1:6] = events[6][1:6], events[5][1:6]

    assert refused(swap) == "event 6 does not follow the chain (edited, or moved from elsewhere)"

    def edit_count(d: dict[str, Any]) -> None:
        d["monthly"][GROUP][MONTH]["distinct"] = 30

    assert f"monthly count of group office-2026 on {MONTH}" in refused(edit_count)

    def rehash(d: dict[str, Any]) -> None:
        # Drop event 3 and renumber and re-hash everything after it: only the heads catch it.
        rows = [row for row in d["events"] if row[0] != 3]
        previous = d["prev_hash"]
        for seq, row in enumerate(rows, 1):
            row[0] = seq
            previous = row[6] = usage.event_hash(previous, usage.UsageEvent(*row[:6]))

        d["events"] = rows

    assert "differs from what host" in refused(rehash)
    # Through the command line: verify, CSV, and a refusal as one line.
    path = tmp_path / "december.json"
    path.write_text(report.to_file())
    done = invoke("vendor", "usage", "verify", str(path), "--csv", "--dir", str(world.path))
    assert done.stdout.splitlines() == [
        "group,month,distinct_clients,peak_day",
        f"office-2026,{MONTH},40,6",
    ]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(_edited(report, edit_count).to_file())
    done = invoke("vendor", "usage", "verify", str(tampered), "--dir", str(world.path), check=False)
    assert done.returncode != 0 and MONTH in done.stderr and "Traceback" not in done.stderr


def test_consecutive_reports_chain_and_a_gap_is_reported(
    certified: tuple[World, HostFiles],
) -> None:
    world, files = certified
    url = files.database_url
    cmids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(3)]
    reports = []
    for week in range(3):
        clock = Clock(START + week * 7 * DAY + 3600)
        serve_day(files, url, clock, cmids)
        end = START + (week + 1) * 7 * DAY
        reports.append(export_report(files, url, start=end - 7 * DAY, end=end, now=clock.now + 60))
    keys = root_keys(world)
    usage.verify_report(reports[0], keys)
    usage.verify_report(reports[1], keys, previous=reports[0])
    usage.verify_report(reports[2], keys, previous=reports[1])
    with pytest.raises(usage.ReportRefused, match="gap between the reports"):
        usage.verify_report(reports[2], keys, previous=reports[0])
    assert reports[1].counted["daily"][GROUP] == {f"{MONTH}-08": 3}


@pytest.mark.postgres
def test_two_hosts_sharing_one_postgresql_database_give_one_verifiable_report(
    vendor_world: World, tmp_path: Path
) -> None:
    key = issue_host_key(vendor_world, hosts=2)
    first, second = make_host(tmp_path / "a", key), make_host(tmp_path / "b", key)
    certify(vendor_world, first)
    certify(vendor_world, second)
    with fresh_schema() as url:
        clock = Clock(START + 3600)
        a = [f"00000000-0000-4000-8000-{n:012d}" for n in range(5)]
        b = [f"00000000-0000-4000-9000-{n:012d}" for n in range(5)]
        serve_day(first, url, clock, a)
        record_usage(first, url, now=clock.now + 10)
        serve_day(second, url, clock, b)
        record_usage(second, url, now=clock.now + 20)
        clock.now += DAY
        serve_day(second, url, clock, a[:2])  # two of a's clients now ask b
        record_usage(second, url, now=clock.now + 10)
        record_usage(first, url, now=clock.now + 20)  # nothing new: no event twice
        report = export_report(first, url, start=START, end=START + 2 * DAY, now=clock.now + 30)
    usage.verify_report(usage.read_report(report.to_file()), root_keys(vendor_world))
    assert report.last_seq == 12  # 10 seen + 2 renewed, each once
    assert len(report.certificates) == 2  # heads signed by both hosts
    assert report.counted["monthly"][GROUP][MONTH] == {"distinct": 10, "peak": 10}
    assert {event.host_id for event in report.events} == {
        first.settings().host_id,
        second.settings().host_id,
    }


def test_a_report_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="not a usage report"):
        usage.read_report(json.dumps({"format": "volact-revocation-list", "v": 1}))


def test_host_serve_records_the_usage_log_by_itself(
    certified: tuple[World, HostFiles], tmp_path: Path
) -> None:
    """A real `volact host serve` (SQLite) records and signs while it serves; the report made
    afterwards with `volact host usage-report` verifies with `volact vendor usage verify`."""
    from tests.client.conftest import ServedProcess, clean_env
    from tests.ports import free_port
    from volact.client import License
    from volact.client.discovery import StaticDNS
    from volact.store.usage_log import UsageLog

    world, files = certified
    port = free_port()
    served = ServedProcess(
        ["host", "serve", "--dir", str(files.directory), "--bind", "127.0.0.1", "--port",
         str(port), "--rate-limit", "0", "--usage-interval", "0.2", "--log-level", "warning"],
        clean_env(),
        tmp_path / "serve.log",
    )  # fmt: skip
    try:
        served.wait_for(lambda line: line.startswith("volact host listening on "))
        with world.open() as vendor:
            descriptor = vendor.descriptor(PRODUCT)
        for n in range(3):
            lic = License(descriptor, tmp_path / f"pc{n}", dns=StaticDNS(), machine_id=f"m{n}")
            lic.install_key()
            lic.configure(manual_host=f"127.0.0.1:{port}")
            assert lic.activate().state == "licensed"
        deadline = time.monotonic() + 60
        while True:  # the serve process's own job records and signs the three clients
            with UsageLog(files.database_url) as log:
                run = log.report_range(0, 2**53)
            if len(run.events) == 3 and run.heads:
                break
            assert time.monotonic() < deadline, "host serve recorded no usage"
            time.sleep(0.1)
    finally:
        served.kill()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    report_file = tmp_path / "report.json"
    invoke("host", "usage-report", "--from", today, "--to", today, "-o", str(report_file),
           "--dir", str(files.directory))  # fmt: skip
    done = invoke("vendor", "usage", "verify", str(report_file), "--dir", str(world.path))
    assert "verified: events 1–3" in done.stdout


def test_blocked_unblocked_and_expired_events_are_recorded_once(
    certified: tuple[World, HostFiles],
) -> None:
    world, files = certified
    url = files.database_url
    first, second = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    serve_day(files, url, Clock(START + 3600), [first, second])
    record_usage(files, url, now=START + 3700)
    invoke("host", "block", second, "--dir", str(files.directory))
    record_usage(files, url, now=START + 3800)
    record_usage(files, url, now=START + 3900)  # nothing new: nothing appended
    invoke("host", "unblock", second, "--dir", str(files.directory))
    record_usage(files, url, now=START + 4000)
    record_usage(files, url, now=START + 31 * DAY)  # both left the 30-day window
    report = export_report(files, url, start=START, end=START + 32 * DAY, now=START + 32 * DAY)
    usage.verify_report(report, root_keys(world))
    kinds = [(event.kind, event.cmid) for event in report.events]
    assert kinds == [
        ("seen", first),
        ("seen", second),
        ("blocked", second),
        ("unblocked", second),
        ("expired", first),
        ("expired", second),
    ]
    expired = [event.at for event in report.events if event.kind == "expired"]
    assert expired == [START + 3600 + 30 * DAY] * 2  # when each left the window


def test_verify_says_whose_report_it_is(certified: tuple[World, HostFiles], tmp_path: Path) -> None:
    """The counts bill a customer: the vendor must see which customer, host key and hosts
    signed the report (a customer with two host keys could otherwise hand in the report of
    its quiet deployment for its busy one)."""
    world, files = certified
    url = files.database_url
    clock = Clock(START + 3600)
    serve_day(files, url, clock, ["00000000-0000-4000-8000-000000000001"])
    record_usage(files, url, now=clock.now + 60)
    report = export_report(files, url, start=START, end=START + DAY, now=START + DAY)
    path = tmp_path / "report.json"
    path.write_text(report.to_file())
    certificate = files.certificate_token()
    with world.open() as vendor:
        from volact.core.tickets import verify_certificate

        signer = verify_certificate(
            certificate,
            [VerifyKey.from_paserk(key) for key in vendor.listed_root_keys()],
            vendor_id=vendor.vendor_id,
        )
    done = invoke("vendor", "usage", "verify", str(path), "--json", "--dir", str(world.path))
    signed_by = json.loads(done.stdout)["signed_by"]
    assert signed_by == [
        {
            "host_id": signer.host_id,
            "cert_id": signer.cert_id,
            "key_serial": signer.key_serial,
            "customer": signer.customer,
        }
    ]
    text = invoke("vendor", "usage", "verify", str(path), "--dir", str(world.path)).stdout
    assert f"{signer.key_serial}" in text and signer.host_id in text


def test_verify_shows_the_time_its_events_cover(
    certified: tuple[World, HostFiles], tmp_path: Path
) -> None:
    """The stated --from/--to are not signed; the events' times are (through the chain and its
    heads). A report cut short of the month shows in the time its events cover."""
    world, files = certified
    url = files.database_url
    for day in (0, 3):
        clock = Clock(START + day * DAY + 3600)
        serve_day(files, url, clock, [f"00000000-0000-4000-8000-00000000000{day}"])
        record_usage(files, url, now=clock.now + 60)
    report = export_report(files, url, start=START, end=START + 4 * DAY, now=START + 4 * DAY)
    path = tmp_path / "report.json"
    path.write_text(report.to_file())
    done = invoke("vendor", "usage", "verify", str(path), "--json", "--dir", str(world.path))
    data = json.loads(done.stdout)
    assert (data["first_event_at"], data["last_event_at"]) == (
        report.events[0].at,
        report.events[-1].at,
    )
    assert data["last_event_at"] - data["first_event_at"] >= 3 * DAY
    text = invoke("vendor", "usage", "verify", str(path), "--dir", str(world.path)).stdout
    assert f"events from {usage.day_of(START)}" in text
