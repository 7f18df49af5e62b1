"""Hostile input (SPEC §11): every malformed request gets a 4xx in the one error shape, changes
nothing, and the host goes on serving good requests."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volact.core import keys
from volact.core.errors import VolactError
from volact.host.service import HostService
from volact.store import MemoryStore, Store

from .conftest import Clock, ServedHost
from .helpers import GROUP, VENDOR, body, make_host

JSON = {"content-type": "application/json"}


async def snapshot(store: Store) -> tuple[int, int, int]:
    """(client rows, events, requests counted) — what a refused request must not change."""
    return (
        len(await store.clients(limit=10_000)),
        len(await store.events(limit=10_000)),
        (await store.stats()).total,
    )


def raw_bodies(now: int) -> list[bytes]:
    good = body(0, now)

    def with_(**changes: Any) -> bytes:
        return json.dumps({**good, **changes}).encode()

    deep_array = b"[" * 8000 + b"]" * 8000
    deep_object = b'{"a":' * 3000 + b"1" + b"}" * 3000
    return [
        b"",
        b"{",
        b"nul",
        b'{"v": 1,}',
        b"\xff\xfe{}",
        b"[]",
        b"null",
        b'"a string"',
        b"12",
        b"true",
        deep_array,
        deep_object,
        with_(client_time=None).replace(b"null", b"NaN"),
        with_(client_time=None).replace(b"null", b"Infinity"),
        with_(client_time=None).replace(b"null", b"1" * 5000),  # over Python's digit limit
        with_(client_time=10**30),
        with_(client_time=-1),
        with_(client_time=1.5),
        with_(client_time=str(now)),
        with_(client_time=True),
        with_(v="1"),
        with_(v=None),
        with_(v=[1]),
        with_(cmid="not-a-uuid"),
        with_(cmid="00000000-0000-0000-0000-00000000000g"),
        with_(cmid=12345),
        with_(fingerprint="ABCDEF0123456789"),
        with_(fingerprint="abc"),
        with_(fingerprint="z" * 32),
        with_(machine="pc\u0000one"),
        with_(machine="pc\none"),
        with_(machine="x" * 256),
        with_(machine=""),
        with_(nonce="short"),
        with_(nonce="!" * 30),
        with_(nonce="A" * 200),
        with_(state="hacked"),
        with_(state=None),
        with_(product="Writer 2026"),
        with_(product="x" * 65),
        with_(key=None),
        with_(key="K" * 65),
        with_(extra_field=1),
        with_(**{"__proto__": {}}),
        json.dumps({k: v for k, v in good.items() if k != "nonce"}).encode(),
        json.dumps({"v": 1}).encode(),
        json.dumps({"v": 2, "anything": "goes"}).encode(),
        json.dumps({"v": 0}).encode(),
        json.dumps({"v": 99999999999999999999}).encode(),
    ]


async def test_malformed_bodies_are_refused_and_change_nothing(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    before = await snapshot(service.store)
    for raw in raw_bodies(clock.now):
        response = await client.post("/v1/activate", content=raw, headers=JSON)
        assert 400 <= response.status_code < 500, raw[:80]
        error = response.json()["error"]
        assert error["code"] in {"bad_request", "unsupported_version"}, raw[:80]
        assert set(response.json()) == {"ok", "error"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await client.post(
            "/v1/activate",
            content=json.dumps(body(0, clock.now)),
            headers={"content-type": content_type},
        )
        assert response.json()["error"]["code"] == "bad_request"
    response = await client.post(
        "/v1/activate", content=b"x" * 20_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert await snapshot(service.store) == before

    # The host still serves a good request, and counts it.
    response = await client.post("/v1/activate", json=body(0, clock.now))
    assert response.json()["error"]["details"]["count"] == 1


async def test_unknown_products_and_garbage_keys_are_refused_and_not_counted(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    cases = [
        {"product": "unknown-product"},
        {"key": "BCDFG-HJKMP-QRTVW-XY234-67899"},
        {"key": "hello"},
        {"key": "0" * 25},
        {"key": keys.make_secret_key(keys.Channel.MAK, b"\x01" * 12).text},
        {"key": keys.make_gvlk(VENDOR, "design-2026", "paint-2026").text, "product": "paint-2026"},
    ]
    for changes in cases:
        response = await client.post("/v1/activate", json=body(0, clock.now, **changes))
        assert response.status_code in {403, 422}, changes
        assert response.json()["error"]["code"] in {"invalid_key", "product_not_hosted"}
    # Refusals are logged as events for the admin, but no client is stored or counted.
    assert await service.store.clients() == []
    assert await service.store.counts(clock.now) == {}
    assert (await service.store.stats()).failed == len(cases)
    response = await client.post("/v1/activate", json=body(0, clock.now))
    assert response.json()["error"]["details"] == {
        "count": 1,
        "threshold": 5,
        "retry_interval": 7200,
    }


def _answer(service: HostService, data: Any) -> str:
    """ "ok" or the error code; anything but a VolactError fails the test."""
    try:
        asyncio.run(service.activate(data, "203.0.113.9"))
    except VolactError as error:
        return error.code
    return "ok"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    field=st.sampled_from(sorted(body(0, 0))),
    value=json_values,
    drop=st.booleans(),
)
def test_any_mangled_field_is_a_clean_error(
    hostile_service: HostService, field: str, value: Any, drop: bool
) -> None:
    now = hostile_service.clock()
    data = body(0, now)
    if drop:
        del data[field]
    else:
        data[field] = value
    outcome = _answer(hostile_service, data)
    assert outcome in {
        "ok",  # a mangled field that is still valid (another machine name, say)
        "bad_request",
        "unsupported_version",
        "invalid_key",
        "product_not_hosted",
        "time_skew",
    }


@given(data=json_values)
@settings(max_examples=150, deadline=None, database=None)
def test_any_json_value_is_a_clean_error(hostile_service: HostService, data: Any) -> None:
    assert _answer(hostile_service, data) in {"bad_request", "unsupported_version"}


@pytest.fixture(scope="module")
def hostile_service(tmp_path_factory: pytest.TempPathFactory) -> HostService:
    """A host on a memory store (no start needed), with threshold 1 so good requests activate."""
    from volact.core.policy import GroupPolicy

    now = int(time.time())
    host = make_host(
        tmp_path_factory.mktemp("hostile") / "host", now, groups={GROUP: GroupPolicy(threshold=1)}
    )
    return HostService.from_files(host.files, MemoryStore(), Clock(now), maintenance_interval=0)


# --- framing against a real server: chunked bodies and lying Content-Length ---------------------


def _exchange(url: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """Send raw bytes as one HTTP request; return the first response's status and JSON body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The host may answer and close before reading it all, as it should.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def _chunked(payload: bytes, chunk: int = 4096) -> bytes:
    pieces = [
        f"{len(payload[i : i + chunk]):x}\r\n".encode() + payload[i : i + chunk] + b"\r\n"
        for i in range(0, len(payload), chunk)
    ]
    return b"".join(pieces) + b"0\r\n\r\n"


@pytest.mark.slow
def test_framing_tricks_against_a_real_host(
    tmp_path: Path, serve_host: Callable[..., ServedHost]
) -> None:
    now = int(time.time())
    make_host(tmp_path / "host", now)
    served = serve_host(tmp_path / "host", "--rate-limit", "0")
    head = b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    huge = b'{"pad": "' + b"x" * 40_000 + b'"}'
    good = json.dumps(body(1, now)).encode()

    # Chunked, no Content-Length, over the limit: refused once 16 KiB have been read.
    status, answer = _exchange(
        served.url, head + b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(huge)
    )
    assert (status, answer["error"]["code"]) == (413, "bad_request")
    # A Content-Length over the limit is refused before the body is read.
    status, answer = _exchange(served.url, head + b"Content-Length: 1000000\r\n\r\n" + good)
    assert (status, answer["error"]["code"]) == (413, "bad_request")
    # A Content-Length shorter than the body: the first 20 bytes are that request's body (not
    # JSON) and it is answered first; the rest is not HTTP, and its refusal follows (in order:
    # tests/host/test_edge.py), in the one shape, and the connection is closed.
    status, answer = _exchange(served.url, head + b"Content-Length: 20\r\n\r\n" + good)
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    assert answer["error"]["message"] == "the body is not valid JSON"
    # Garbage that is not HTTP at all, and an absurd header.
    status, answer = _exchange(served.url, b"HELLO THERE\r\n\r\n")
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    status, answer = _exchange(served.url, head + b"Content-Length: -5\r\n\r\n")
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    # Chunked and small: accepted like any body.
    status, answer = _exchange(
        served.url, head + b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(good, 50)
    )
    assert (status, answer["error"]["code"]) == (409, "count_insufficient")

    # Nothing of the above was stored; the host still answers.
    response = httpx.post(f"{served.url}/v1/activate", json=body(2, now), timeout=10)
    assert response.json()["error"]["details"]["count"] == 2
    assert httpx.get(f"{served.url}/v1/health", timeout=10).json()["ok"] is True
    assert served.stop() == 0


async def test_bodies_that_are_not_rfc_8259_json_are_not_json(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    """The host reads bodies as strict RFC 8259 JSON in UTF-8 (docs/protocol.md)."""
    good = json.dumps(body(0, clock.now)).encode()
    before = await snapshot(service.store)
    for raw in (
        b"\xef\xbb\xbf" + good,  # a UTF-8 byte-order mark
        good.replace(b'"machine": "', b'"machine": "\\ud800'),  # a lone surrogate
        good.replace(b'"v": 1', b'"v": NaN'),
        b"[" * 1025 + b"]" * 1025,  # deeper than 1,024 levels
    ):
        response = await client.post("/v1/activate", content=raw, headers=JSON)
        assert response.status_code == 400, raw[:40]
        assert response.json()["error"]["message"] == "the body is not valid JSON", raw[:40]
    assert await snapshot(service.store) == before
    # The same body without the oddity is read and decided (counted, below the threshold).
    answer = await client.post("/v1/activate", content=good, headers=JSON)
    assert answer.json()["error"]["code"] == "count_insufficient"
