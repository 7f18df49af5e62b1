"""`volact host status` checks the SRV record the host published against the real BIND server it
published to, instead of repeating "published at …" after the record was deleted."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.cli_run import run
from tests.dns.bind import BindServer
from tests.host.helpers import make_host
from volact.core.host_machine import Event
from volact.host.publisher import SRVPublisher
from volact.store import SQLiteStore

pytestmark = pytest.mark.dns


def published_host(tmp_path: Path, bind: BindServer) -> Path:
    """A host directory whose event log holds a real publishing of its record into BIND (the
    publisher of `serve --publish-dns`, with its events stored as `serve` stores them)."""
    now = int(time.time())
    host = make_host(tmp_path / "host", now)
    events: list[Event] = []
    publisher = SRVPublisher(
        ["volact.test"],
        target="kms1.volact.test",
        port=17688,
        server=bind.server,
        key=bind.key,
        on_event=events.append,
        clock=lambda: now,
        timeout=5.0,
    )

    async def publish_and_store() -> None:
        assert await publisher.publish_once("volact.test")
        store = SQLiteStore(host.directory / "host.db")
        await store.open()
        try:
            for event in events:
                await store.record_event(event)
        finally:
            await store.close()

    asyncio.run(publish_and_store())
    assert [event.kind for event in events] == ["dns_published"]
    return host.directory


def test_status_says_the_published_record_is_in_dns_and_then_that_it_was_deleted(
    tmp_path: Path, bind: BindServer, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = published_host(tmp_path, bind)

    status, out, err = run(capsys, "host", "status", "--dir", str(directory))
    assert status == 0, err
    line = next(line for line in out.splitlines() if line.startswith("  volact.test: "))
    assert "published at" in line and line.endswith("; in DNS now")

    bind.clear_srv("_volact._tcp.volact.test", "volact.test")  # someone deletes it from the zone
    status, out, err = run(capsys, "host", "status", "--dir", str(directory))
    assert status == 0, err
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  volact.test: "))
    assert "NOT in DNS now (nxdomain): the record was removed from the zone" in lines[at]
    assert "restart `volact host serve` to publish it now" in lines[at + 1]

    status, out, _ = run(capsys, "host", "status", "--dir", str(directory), "--json")
    (entry,) = json.loads(out)["dns_publishing"]
    assert (entry["ok"], entry["in_dns"], entry["dns_now"]) == (True, False, "nxdomain")

    # Without the check, status says only what the event log holds.
    status, out, _ = run(capsys, "host", "status", "--dir", str(directory), "--no-dns-check")
    line = next(line for line in out.splitlines() if line.startswith("  volact.test: "))
    assert "published at" in line and "DNS now" not in line
