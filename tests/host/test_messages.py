"""What a host's admin reads: refusal lines in the log name the client (CMID and machine name),
and `host block` takes the 8 characters the tables show, and says that blocking is not
revocation."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from tests.cli_run import run
from volact.core.errors import CountInsufficient
from volact.host.service import HostService
from volact.store import SQLiteStore
from volact.web.runner import JSONLogFormatter

from .helpers import CertifiedHost, body, cmid, make_host


async def test_refusal_lines_in_the_log_carry_the_cmid_and_the_machine_name(
    client: httpx.AsyncClient, service: HostService, clock: object
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONLogFormatter())  # the host's log format (`serve` sets it up)
    logger = logging.getLogger("volact.host")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        now = clock.now  # type: ignore[attr-defined]
        await client.post("/v1/activate", json=body(0, now))  # below the threshold
        await client.post("/v1/activate", json=body(1, now, client_time=now - 86400))  # skew
        await service.store.block(cmid(0), now)
        await client.post("/v1/activate", json=body(0, now))  # blocked
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    refused = [line for line in lines if line["message"].startswith("refused ")]
    assert [(r["code"], r["cmid"], r["machine"]) for r in refused] == [
        ("count_insufficient", cmid(0), "pc-0.example.com"),
        ("time_skew", cmid(1), "pc-1.example.com"),
        ("client_blocked", cmid(0), "pc-0.example.com"),
    ]
    first = refused[0]
    assert first["message"] == (
        f"refused pc-0.example.com (CMID {cmid(0)}) for writer-2026: count_insufficient"
    )
    assert (first["count"], first["threshold"], first["client"]) == (1, 5, "127.0.0.1")
    assert first["level"] == "info" and first["logger"] == "volact.host"
    assert "count" not in refused[1]  # only a threshold refusal has a count
    text = stream.getvalue()
    assert body(0, now)["key"] not in text and body(0, now)["nonce"] not in text


@pytest.fixture
def known(tmp_path: Path) -> CertifiedHost:
    """A host whose store knows three CMIDs: cmid(1) and cmid(2) share their first 35
    characters, cmid(0x100) differs from them in its 33rd."""
    now = int(time.time())
    host = make_host(tmp_path / "host", now)

    async def fill() -> None:
        store = SQLiteStore(host.directory / "host.db")
        async with HostService.from_files(host.files, store, lambda: now) as service:
            for n in (1, 2, 0x100):
                with contextlib.suppress(CountInsufficient):
                    await service.activate(body(n, now), "192.0.2.7")

    asyncio.run(fill())
    return host


def test_block_accepts_a_unique_cmid_prefix(
    known: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(known.directory)
    prefix = cmid(0x100)[:34].upper()  # the first place it differs from the others, any case
    status, out, err = run(capsys, "host", "block", prefix, "--dir", directory)
    assert status == 0, err
    first, second = out.splitlines()
    assert first == f"blocked {cmid(0x100)} (1 group)"
    assert second.startswith("Blocking is not revocation: the client keeps the activation it ")
    status, out, _ = run(capsys, "host", "unblock", cmid(0x100)[:34], "--json", "--dir", directory)
    assert json.loads(out) == {"cmid": cmid(0x100), "blocked": False, "groups": 1}


def test_an_ambiguous_prefix_is_refused_with_the_matches(
    known: CertifiedHost, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = str(known.directory)
    status, out, err = run(capsys, "host", "block", cmid(1)[:8], "--dir", directory)
    assert (status, out) == (1, "")
    assert err == (
        f"bad_request: {cmid(1)[:8]} is the start of more than one CMID ({cmid(1)}, "
        f"{cmid(2)}, {cmid(0x100)}); type more of it\n"
    )
    status, _, err = run(capsys, "host", "block", cmid(1)[:35], "--json", "--dir", directory)
    assert status == 1
    assert err.startswith("bad_request: ") and cmid(1) in err and cmid(2) in err
    status, _, err = run(capsys, "host", "block", "ffff", "--dir", directory)
    assert (status, err) == (
        1,
        "not_found: no client whose CMID starts with ffff is known to this host\n",
    )
    _, out, _ = run(
        capsys, "host", "events", "--json", "--dir", directory, "--kind", "client_blocked"
    )
    assert json.loads(out) == []  # nothing was blocked


def test_no_host_says_how_to_init_without_the_key_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "host", "activate", "--dir", str(tmp_path / "none"))
    assert status == 1
    assert err.startswith(f"not_found: no host in {tmp_path / 'none'}; run `volact host init")
    # The step that fixes it keeps the secret key out of ps and shell history (issue 16).
    assert "--key-file FILE" in err and "--key HOSTKEY" not in err
