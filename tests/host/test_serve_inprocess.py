"""The server's lifecycle in-process: ready callback, background jobs, SIGTERM, flush, close."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from volact.core.host_machine import Event
from volact.host.app import create_app
from volact.host.server import serve_until_stopped
from volact.host.service import HostService
from volact.store import SQLiteStore
from volact.web.http1 import Edge
from volact.web.runner import bind_socket

from .helpers import body, make_host


async def test_background_jobs_run_until_sigterm_and_their_events_are_kept(
    tmp_path: Path,
) -> None:
    now = int(time.time())
    host = make_host(tmp_path / "host", now)
    store = SQLiteStore(host.directory / "host.db")
    service = HostService.from_files(host.files, store, lambda: int(time.time()))
    urls: list[str] = []
    seen: list[str] = []

    async def publisher(running: HostService, stopping: asyncio.Event) -> None:
        running.note_event(Event("dns_published", now, details={"domain": "corp.example"}))
        async with httpx.AsyncClient(base_url=urls[0]) as http:
            answer = await http.post("/v1/activate", json=body(0, now))
            seen.append(answer.json()["error"]["code"])
        os.kill(os.getpid(), signal.SIGTERM)  # what systemctl stop does
        await stopping.wait()
        running.note_event(Event("dns_withdrawn", now, details={"domain": "corp.example"}))

    async def failing(running: HostService, stopping: asyncio.Event) -> None:
        raise RuntimeError("a broken job never stops the host")

    sock = bind_socket("127.0.0.1", 0)
    try:
        edge = Edge(create_app(service, rate_limit=0).routes)
        await serve_until_stopped(service, edge, sock, [publisher, failing], urls.append, 5)
    finally:
        sock.close()
    assert urls[0].startswith("http://127.0.0.1:")
    assert seen == ["count_insufficient"]

    reopened = SQLiteStore(host.directory / "host.db")
    await reopened.open()
    try:
        kinds = [event.kind for event in await reopened.events()]
        assert {"dns_published", "dns_withdrawn", "host_started"} <= set(kinds)
        assert len(await reopened.clients()) == 1
    finally:
        await reopened.close()
