"""Benchmark: the size of a month's signed usage report and the time to verify it (issue 20).

A month (31 days) of 10,000 clients of one group, each asking on its first day and weekly
after (the default renewal interval), so about 44,000 ``seen``/``renewed`` events; the host
records every 15 minutes and signs a head each time (2,976 heads). The chain and the heads are
made by the real core (:mod:`volact.core.usage`) with a real certified host key, and the report
is verified as ``volact vendor usage verify`` does. References measured in the same run: parsing
the file with ``json.loads`` and one bare Ed25519 verification per head. It also times recording
into a real SQLite host database (the first recording, then an incremental one with 1% of the
clients changed) against a ``COUNT(*)`` of the clients. Run::

    .venv/bin/python benchmarks/usage_report.py [--clients 10000] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories import Vendor

from volact import crypto
from volact.core import usage
from volact.core.durations import DAY
from volact.core.policy import GroupPolicy

START = 1_798_761_600  # 2027-01-01 00:00 UTC
SCAN = 900


def build(clients: int) -> tuple[usage.Report, list[crypto.VerifyKey]]:
    vendor = Vendor()
    host_key = crypto.SigningKey.generate()
    certificate = vendor.certificate(
        host_key,
        {"office-2026": GroupPolicy()},
        not_before=START - DAY,
        not_after=START + 400 * DAY,
        host_id="host-1",
    )
    asks = sorted(
        (START + day * DAY + (n * 7919) % DAY, n)
        for n in range(clients)
        for day in range(31)
        if day >= n % 7 and (day - n % 7) % 7 == 0
    )
    events: list[usage.UsageEvent] = []
    hashes: list[str] = []
    heads: list[str] = []
    previous = usage.GENESIS
    seen: set[int] = set()
    next_scan = START + SCAN
    for at, n in asks:
        while at >= next_scan:
            if events:
                head = usage.Head(
                    events[-1].seq, previous, next_scan, "host-1", certificate.cert_id
                )
                heads.append(usage.sign_head(host_key, head))
            next_scan += SCAN
        kind = "renewed" if n in seen else "seen"
        seen.add(n)
        event = usage.UsageEvent(
            len(events) + 1,
            at,
            kind,
            "office-2026",
            f"{n:08d}-0000-4000-8000-000000000000",
            "host-1",
        )
        previous = usage.event_hash(previous, event)
        events.append(event)
        hashes.append(previous)
    heads.append(
        usage.sign_head(
            host_key, usage.Head(events[-1].seq, previous, next_scan, "host-1", certificate.cert_id)
        )
    )
    report = usage.build_report(
        vendor_id=vendor.vendor_id,
        start=START,
        end=START + 31 * DAY,
        prev_hash=usage.GENESIS,
        events=events,
        hashes=hashes,
        heads=heads,
        certificates=[certificate.token],
    )
    return report, [vendor.root.public_key]


def recording(clients: int, changed: int) -> dict[str, float]:
    """The cost of recording into a real SQLite host database: the first recording of
    ``clients`` clients (their last requests spread over a week), then one where ``changed`` of
    them asked again (the usual case between two recordings)."""
    import sqlite3
    import tempfile

    from volact.sql import migrations
    from volact.store.usage_log import UsageLog

    def too_new(version: int, latest: int) -> Exception:
        return RuntimeError("schema too new")

    path = Path(tempfile.mkdtemp()) / "host.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    migrations.migrate_sqlite(conn, "host", too_new)
    rows = [
        (f"{n:08d}-0000-4000-8000-000000000000", "office-2026", "writer-2026", "ab" * 16, "pc",
         "licensed", 0, START + n * 60 % (7 * DAY), START + n * 60 % (7 * DAY), None)
        for n in range(clients)
    ]  # fmt: skip
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    key = crypto.SigningKey.generate()

    def record(now: int) -> float:
        started = time.perf_counter()
        with UsageLog(f"sqlite:///{path}") as log:
            log.record(
                now=now, host_id="h", cert_id="c", certificate="t",
                sign=lambda head: usage.sign_head(key, head),
            )  # fmt: skip
        return time.perf_counter() - started

    first = record(START + 7 * DAY)
    later = START + 8 * DAY
    conn.execute("BEGIN")
    conn.executemany(
        "UPDATE clients SET last_seen = ? WHERE cmid = ?",
        [(later, row[0]) for row in rows[:changed]],
    )
    conn.execute("COMMIT")
    incremental = record(later + 60)
    started = time.perf_counter()
    conn.execute("SELECT COUNT(*) FROM clients").fetchone()
    count = time.perf_counter() - started
    conn.close()
    return {"first_recording_seconds": first, "incremental_recording_seconds": incremental,
            "reference_count_seconds": count}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    report, keys = build(options.clients)
    text = report.to_file()
    verify_times, parse_times, ed25519_times = [], [], []
    head_key = crypto.SigningKey.generate()
    signed = crypto.sign(head_key, "probe", {"v": 1})
    for _ in range(options.runs):
        started = time.perf_counter()
        usage.verify_report(usage.read_report(text), keys)
        verify_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        json.loads(text)
        parse_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in report.heads:
            crypto.verify(signed, "probe", [head_key.public_key])
        ed25519_times.append(time.perf_counter() - started)
    figures = {
        "clients": options.clients,
        "events": len(report.events),
        "heads": len(report.heads),
        "report_bytes": len(text.encode()),
        "verify_seconds": statistics.median(verify_times),
        "reference_json_parse_seconds": statistics.median(parse_times),
        "reference_head_signatures_seconds": statistics.median(ed25519_times),
    }
    figures["verify_over_parse"] = (
        figures["verify_seconds"] / figures["reference_json_parse_seconds"]
    )
    figures.update(recording(options.clients, options.clients // 100))
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{figures['clients']} clients, one month: {figures['events']} events, "
        f"{figures['heads']} signed heads"
    )
    print(f"report size: {figures['report_bytes'] / 1e6:.1f} MB")
    print(
        f"verify: {figures['verify_seconds']:.2f} s (median of {options.runs}); json.loads of the "
        f"file {figures['reference_json_parse_seconds']:.3f} s; {figures['heads']} bare Ed25519 "
        f"verifications {figures['reference_head_signatures_seconds']:.3f} s; verify/parse "
        f"{figures['verify_over_parse']:.1f}x"
    )
    print(
        f"recording into SQLite: first {figures['first_recording_seconds']:.2f} s for "
        f"{figures['clients']} clients; then {figures['incremental_recording_seconds'] * 1000:.0f}"
        f" ms with {figures['clients'] // 100} changed (reference: COUNT(*) of the clients "
        f"{figures['reference_count_seconds'] * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    main()
