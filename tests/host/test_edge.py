"""The host's own HTTP/1.1 edge (volact.web.http1 with the host's routes), in-process.

A real edge on a real socket, in this event loop, spoken to in raw HTTP/1.1, so that keep-alive,
pipelining, ``Connection: close``, HTTP/1.0, disconnects, framing and shutdown are what a client
sees. Each test also records the activation bodies the routes were given, so a test sees which
requests reached the service.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from volact.core.errors import BadRequest
from volact.core.policy import GroupPolicy
from volact.host.app import create_app
from volact.host.service import HostService
from volact.store import SQLiteStore
from volact.web import Answer as Answer_
from volact.web import has_duplicate_keys, parse_json
from volact.web.http1 import Edge, Limits, connection_cap
from volact.web.runner import bind_socket, listening_url

from .helpers import GROUP, body, make_host

Answer = tuple[int, dict[str, str], dict[str, Any]]
WAIT = 30.0  # the longest any condition below may take (it is polled, never slept)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (bounded): the server under test runs in this event loop."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for: {what}"
        await asyncio.sleep(0.01)


@dataclass
class Served:
    """A host served in-process: its address, service, and the bodies answered directly."""

    host: str
    port: int
    service: HostService
    edge: Edge
    server: asyncio.AbstractServer
    direct: list[bytes] = field(default_factory=list)
    hold: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)


def request(data: bytes, *, head: bytes = b"", path: bytes = b"/v1/activate") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % len(data) + head + b"\r\n" + data
    )


def activation(n: int, now: int, **changes: Any) -> bytes:
    return json.dumps(body(n, now, **changes)).encode()


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 answer: status, headers (names lower-case), JSON body."""
    status_line = await asyncio.wait_for(reader.readline(), 10)
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value.strip()
    payload = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, json.loads(payload)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    now = int(time.time())
    host = make_host(tmp_path / "host", now, groups={GROUP: GroupPolicy(threshold=2)})
    service = HostService.from_files(
        host.files, SQLiteStore(host.directory / "host.db"), lambda: int(time.time())
    )
    app = create_app(service, rate_limit=5, burst=5)
    endpoint = app.activate
    answer_request = endpoint.answer_request
    sock = bind_socket("127.0.0.1", 0)
    address, port = sock.getsockname()[:2]
    edge = Edge(app.routes)
    assert listening_url(sock) == f"http://127.0.0.1:{port}"

    async def recording(headers: list[tuple[bytes, bytes]], raw: bytes, address: str) -> Answer_:
        running.direct.append(raw)
        running.entered.set()
        if running.hold is not None:
            await running.hold.wait()
        return await answer_request(headers, raw, address)

    endpoint.answer_request = recording  # type: ignore[method-assign]
    async with service:
        server = await edge.serve(sock)
        running = Served(address, port, service, edge, server)
        try:
            yield running
        finally:
            server.close()
            await edge.shutdown(5)
            sock.close()


async def test_keep_alive_answers_are_complete(served: Served) -> None:
    now = int(time.time())
    reader, writer = await served.connect()
    writer.write(request(activation(1, now)))
    status, headers, first = await read_answer(reader)
    assert (status, first["error"]["code"]) == (409, "count_insufficient")
    assert first["error"]["details"]["count"] == 1
    assert headers["content-type"] == "application/json"
    assert "date" in headers and "connection" not in headers
    writer.write(request(activation(2, now)))
    status, headers, second = await read_answer(reader)
    assert status == 200 and second["ok"] is True and second["count"] == 2
    assert second["host_certificate"] and second["ticket"].startswith("v4.public.")
    # Bad bodies are answered on the same path, in the one shape, and the connection stays.
    writer.write(request(b"{not json"))
    status, _, bad = await read_answer(reader)
    assert (status, bad["error"]["message"]) == (400, "the body is not valid JSON")
    writer.write(request(b""))
    status, _, empty = await read_answer(reader)
    assert (status, empty["error"]["code"]) == (400, "bad_request")
    assert len(served.direct) == 4
    writer.close()
    clients = await served.service.store.clients()
    assert len(clients) == 2


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    now = int(time.time())
    reader, writer = await served.connect()
    health = b"GET /v1/health HTTP/1.1\r\nHost: h\r\n\r\n"
    writer.write(
        request(activation(1, now))
        + health
        + request(activation(2, now))
        + request(activation(3, now))
        + request(b"[]")
    )
    answers = [await read_answer(reader) for _ in range(5)]
    assert [status for status, _, _ in answers] == [409, 200, 200, 200, 400]
    assert answers[0][2]["error"]["details"]["count"] == 1
    assert answers[1][2]["activated"] is True and "ticket" not in answers[1][2]
    assert [answers[2][2]["count"], answers[3][2]["count"]] == [2, 3]
    assert answers[4][2]["error"]["code"] == "bad_request"
    assert served.direct == [activation(1, now), activation(2, now), activation(3, now), b"[]"]
    writer.close()
    assert len(await served.service.store.clients()) == 3


async def test_connection_close_and_http_1_0_are_honoured(served: Served) -> None:
    now = int(time.time())
    reader, writer = await served.connect()
    writer.write(request(activation(1, now), head=b"Connection: close\r\n"))
    status, headers, _ = await read_answer(reader)
    assert (status, headers["connection"]) == (409, "close")
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the host closed it
    writer.close()

    reader, writer = await served.connect()
    data = activation(2, now)
    writer.write(b"POST /v1/activate HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
    status, headers, answer = await read_answer(reader)
    assert (status, answer["count"], headers["connection"]) == (200, 2, "close")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    assert len(served.direct) == 2


async def test_a_client_that_leaves_early_is_still_recorded(served: Served) -> None:
    now = int(time.time())
    served.hold = asyncio.Event()
    reader, writer = await served.connect()
    writer.write(request(activation(1, now)))
    await asyncio.wait_for(served.entered.wait(), 10)
    writer.close()
    await writer.wait_closed()
    served.hold.set()
    deadline = time.monotonic() + WAIT
    while not await served.service.store.clients() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert [client.cmid for client in await served.service.store.clients()] == [
        body(1, now)["cmid"]
    ]
    await until(lambda: not served.edge.connections, "the host to see it go")
    # The host goes on serving.
    reader, writer = await served.connect()
    writer.write(request(activation(2, now)))
    status, _, answer = await read_answer(reader)
    assert (status, answer["count"]) == (200, 2)
    writer.close()


async def test_rate_limited_direct_requests_say_when_to_retry(served: Served) -> None:
    now = int(time.time())
    reader, writer = await served.connect()
    statuses = []
    for n in range(7):
        writer.write(request(activation(n, now)))
        status, headers, answer = await read_answer(reader)
        statuses.append(status)
    assert statuses[:5] == [409, 200, 200, 200, 200]
    assert statuses[5:] == [429, 429]
    assert answer["error"]["code"] == "rate_limited"
    assert int(headers["retry-after"]) >= 1
    assert len(served.direct) == 7
    writer.close()
    assert len(await served.service.store.clients()) == 5


@pytest.mark.parametrize(
    ("raw", "status", "message", "read"),
    [
        (
            b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n[]\r\n0\r\n\r\n",
            400,
            "the request body must be a JSON object",
            True,
        ),
        (
            b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nContent-Length: 99999\r\n\r\n",
            413,
            "the body is larger than 16384 bytes",
            False,
        ),
        (
            b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 2\r\n\r\n[]",
            400,
            "the body must be application/json",
            True,
        ),
        (
            b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
            b"Content-Length: 2\r\n\r\n[]",
            400,
            "",
            True,
        ),
        (
            b"POST /v1/activate?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n[]",
            400,
            "",
            True,
        ),
        (
            b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n"
            b"\r\n2\r\n[]\r\n0\r\n\r\n",
            501,
            "only the chunked transfer coding is understood, alone",
            False,
        ),
        (
            b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nX: " + b"y" * 20_000 + b"\r\n\r\n",
            431,
            "",
            False,
        ),
        (b"GET /v1/health/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", 404, "", False),
        (b"DELETE /v1/health HTTP/1.1\r\nHost: h\r\n\r\n", 405, "", False),
    ],
    ids=[
        "chunked",
        "too-long",
        "content-type",
        "expect-100",
        "query",
        "gzip",
        "huge-header",
        "slash",
        "method",
    ],
)
async def test_framings_and_refusals_are_answered_in_the_one_shape(
    served: Served, raw: bytes, status: int, message: str, read: bool
) -> None:
    reader, writer = await served.connect()
    writer.write(raw)
    if b"100-continue" in raw:
        assert await asyncio.wait_for(reader.readline(), 10) == b"HTTP/1.1 100 Continue\r\n"
        assert await reader.readline() == b"\r\n"
    got, headers, answer = await read_answer(reader)
    assert got == status and answer["ok"] is False
    assert "location" not in headers
    assert answer["error"]["message"] == message or not message
    # Only bodies that could be read reached the service.
    assert served.direct == ([b"[]"] if read else [])
    writer.close()


async def test_shutdown_lets_a_direct_answer_finish_and_closes(served: Served) -> None:
    now = int(time.time())
    served.hold = asyncio.Event()
    reader, writer = await served.connect()
    writer.write(request(activation(1, now)))
    await asyncio.wait_for(served.entered.wait(), 10)
    served.server.close()
    stopping = asyncio.create_task(served.edge.shutdown(20))
    await until(lambda: served.edge.closing, "the edge to begin its shutdown")
    served.hold.set()
    status, headers, _ = await read_answer(reader)
    assert (status, headers["connection"]) == (409, "close")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    await stopping


# --- the pieces that are pure: the descriptor reserve, duplicate keys ------------------------


@pytest.mark.parametrize(
    ("wanted", "open_files", "cap"),
    [(8192, 256, 192), (8192, 1024, 768), (8192, 16384, 8192), (8192, 8300, 8044), (10, 40, 10)],
)
def test_the_global_cap_stays_below_the_open_files_limit(
    wanted: int, open_files: int, cap: int
) -> None:
    assert connection_cap(wanted, open_files) == cap


@pytest.mark.parametrize(
    ("raw", "duplicated"),
    [
        (b'{"a":1,"a":2}', True),
        (b'{"a":1,"b":2}', False),
        (b'{"a:":"x:y","b":[{"c":1},{"c":2}]}', False),  # colons in strings, repeated names apart
        (b'{"a":{"b":1,"b":1}}', True),  # nested, with the same value
        (b'{"a:":1,"a:":"::"}', True),  # a duplicate whose colons are all in strings
        (b'{"\\u003a":1,"b":"\\":"}', False),  # escapes: the slow path
        (b'{"\\u003a":1,"\\u003a":2}', True),
        (b'{"\\u0061":1,"a":2}', True),  # the same name spelled two ways
        (b'"a:b"', False),
        (b"[" * 1000 + b"]" * 1000, False),  # deep: no recursion
    ],
)
def test_duplicate_keys_are_found_exactly(raw: bytes, duplicated: bool) -> None:
    assert has_duplicate_keys(orjson.loads(raw), raw) is duplicated
    if duplicated:
        with pytest.raises(BadRequest, match="names a member of an object twice"):
            parse_json(raw)
    else:
        assert type(parse_json(raw)) is type(orjson.loads(raw))  # read, not refused


# --- the edge's other paths ----------------------------------------------------------------------


async def test_head_upgrade_and_many_pipelined_requests(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"HEAD /v1/health HTTP/1.1\r\nHost: h\r\n\r\n")
    assert await asyncio.wait_for(reader.readline(), 10) == b"HTTP/1.1 200 OK\r\n"
    head = b""
    while (line := await reader.readline()) != b"\r\n":
        head += line
    assert b"content-length: " in head  # the length of the body a GET would get, and no body
    # More requests pipelined than the edge queues (16): reading pauses, all are answered.
    writer.write(b"".join(b"GET /nope/%d HTTP/1.1\r\nHost: h\r\n\r\n" % n for n in range(40)))
    for n in range(40):
        status, _, answer = await read_answer(reader)
        assert (status, answer["error"]["message"]) == (404, f"no such endpoint: /nope/{n}")
    # An upgrade is not spoken here: the request is answered, then the connection closed.
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
    status, headers, _ = await read_answer(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_half_sent_requests_and_endless_headers_are_refused(served: Served) -> None:
    # The client stops sending in the middle of a head: 400, then closed.
    reader, writer = await served.connect()
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: h\r\n")
    writer.write_eof()
    status, headers, answer = await read_answer(reader)
    assert (status, headers["connection"]) == (400, "close")
    assert "malformed" in answer["error"]["message"]
    writer.close()
    # One header that never ends: refused once twice the head limit has come, without its end.
    reader, writer = await served.connect()
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: h\r\nX-Long: " + b"y" * 40_000)
    status, _, answer = await read_answer(reader)
    assert (status, answer["error"]["code"]) == (431, "bad_request")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_an_in_process_edge_sweeps_and_caps(tmp_path: Path) -> None:
    now = int(time.time())
    host = make_host(tmp_path / "host", now)
    service = HostService.from_files(
        host.files, SQLiteStore(host.directory / "host.db"), lambda: int(time.time())
    )
    limits = Limits(header_timeout=0.2, idle_timeout=0.2, max_per_address=2, max_connections=3)
    edge = Edge(create_app(service, rate_limit=0).routes, limits, open_files=1024)
    assert edge.max_connections == 3 and edge.tick() == 0.05
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    async with service:
        server = await edge.serve(sock)
        sweeping = asyncio.create_task(edge.sweeping())
        try:
            first = await asyncio.open_connection("127.0.0.1", port)
            second = await asyncio.open_connection("127.0.0.1", port)
            third = await asyncio.open_connection("127.0.0.1", port)  # over 2 from one address
            status, headers, answer = await read_answer(third[0])
            assert (status, headers["retry-after"], answer["error"]["code"]) == (
                429,
                "1",
                "rate_limited",
            )
            # Both held connections are cut by the sweep (nothing was sent on them).
            assert await asyncio.wait_for(first[0].read(), 10) == b""
            assert await asyncio.wait_for(second[0].read(), 10) == b""
            await until(lambda: not edge.connections, "the edge to let them go")
            assert edge.refused == 1 and edge.timed_out >= 2
            for _, writer in (first, second, third):
                writer.close()
        finally:
            sweeping.cancel()
            server.close()
            await edge.shutdown(5)
            sock.close()


def test_no_private_module_of_a_dependency_is_imported() -> None:
    """The edge stands on public APIs only (issue 17): no uvicorn protocol internals, no
    httptools submodule, no module of a dependency whose name starts with an underscore."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "volact"
    found = []
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] in ("volact", "__future__"):
                    continue
                if any(part.startswith("_") for part in parts) or name.startswith(
                    ("uvicorn.protocols", "httptools.")
                ):
                    found.append(f"{path.relative_to(src)}: {name}")
    assert found == []


def test_the_serve_flags_say_the_edge_defaults() -> None:
    """`volact host serve --help` states each limit's default; they are Limits()'s."""
    from click.testing import CliRunner

    from volact.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["host", "serve", "--help"]).output.split())
    limits = Limits()
    for flag, value in [
        ("--header-timeout", limits.header_timeout),
        ("--body-timeout", limits.body_timeout),
        ("--idle-timeout", limits.idle_timeout),
        ("--max-connections", limits.max_connections),
        ("--max-connections-per-address", limits.max_per_address),
    ]:
        described = text.split(flag + " ", 1)[1].split(" --", 1)[0]
        assert f"(default {value:g}" in described, (flag, described)


async def test_large_pipelined_bodies_are_not_taken_for_a_long_head(served: Served) -> None:
    reader, writer = await served.connect()
    big = b"POST /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 12000\r\n\r\n" + b"x" * 12000
    writer.write(big * 3 + b"GET /nope HTTP/1.1\r\nHost: h\r\n")
    await writer.drain()
    for _ in range(3):
        assert (await read_answer(reader))[0] == 404
    writer.write(b"\r\n")
    assert (await read_answer(reader))[0] == 404
    writer.close()
