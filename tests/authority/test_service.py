"""The vendor service's HTTP edge: one error shape, 16 KiB bodies, rate limits per address,
health; and a real `volact vendor serve` process that logs JSON and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.authority.helpers import World, issue_host_key, make_host, start_server
from volact import web
from volact.authority.operations import Vendor
from volact.authority.service import create_app
from volact.host import certification


def _client(vendor: Vendor, limiter: web.RateLimiter | None = None, address: str = "10.0.0.1",
            clock: list[float] | None = None) -> httpx.AsyncClient:  # fmt: skip
    ticks = clock if clock is not None else [0.0]
    app = create_app(vendor, rate_limiter=limiter or web.RateLimiter(0), monotonic=lambda: ticks[0])
    transport = httpx.ASGITransport(app=app, client=(address, 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://vendor")


def _assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status
    body = answer.json()
    assert body["ok"] is False
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


async def test_health(world: World) -> None:
    with world.open() as vendor:
        async with _client(vendor) as http:
            answer = await http.get("/v1/health")
        record, _ = vendor.active_root_key()
    assert answer.json() == {
        "ok": True,
        "service": "volact-vendor",
        "vendor_id": "acme",
        "root_key_id": record.key_id,
        "protocol": 1,
    }


async def test_a_trailing_slash_is_not_found_never_a_redirect(world: World) -> None:
    with world.open() as vendor:
        async with _client(vendor) as http:
            for path in ("/v1/health/", "/v1/mak-activations/", "/v1/host-activations/"):
                answer = await http.get(path, headers={"Host": "evil.example"})
                _assert_error(answer, 404, "not_found")
                assert "location" not in answer.headers


async def test_error_shape_and_body_limit(world: World) -> None:
    with world.open() as vendor:
        async with _client(vendor) as http:
            _assert_error(await http.get("/v1/nothing"), 404, "not_found")
            _assert_error(await http.get("/v1/mak-activations"), 405, "bad_request")
            _assert_error(
                await http.post("/v1/mak-activations", content=b"{nope"), 400, "bad_request"
            )
            _assert_error(await http.post("/v1/mak-activations", json=[1]), 400, "bad_request")
            _assert_error(
                await http.post("/v1/mak-activations", json={"v": 2}), 400, "unsupported_version"
            )
            _assert_error(
                await http.post("/v1/host-activations", json={"v": 1}), 400, "bad_request"
            )
            big = b'{"pad": "' + b"x" * (16 * 1024) + b'"}'
            _assert_error(await http.post("/v1/host-activations", content=big), 413, "bad_request")

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(64):
                    yield b"x" * 1024

            # No Content-Length (chunked): refused once the limit is passed, not read whole.
            _assert_error(
                await http.post("/v1/mak-activations", content=chunks()), 413, "bad_request"
            )


async def test_host_activation_replay_over_http(world: World, tmp_path: Path) -> None:
    files = make_host(tmp_path / "h", issue_host_key(world))
    request = certification.make_host_request(files, now=int(time.time()))
    with world.open() as vendor:
        async with _client(vendor) as http:
            first = await http.post("/v1/host-activations", json=request.to_json())
            assert first.status_code == 200 and first.json()["ok"] is True
            certification.install_host_response(
                files, first.json(), now=int(time.time()), expected_request_id=request.request_id
            )
            _assert_error(
                await http.post("/v1/host-activations", json=request.to_json()),
                409,
                "replayed_request",
            )
        assert vendor.store.certification_count() == 1


async def test_rate_limit_per_address(world: World) -> None:
    clock = [100.0]
    limiter = web.RateLimiter(1.0, 2.0)
    with world.open() as vendor:
        async with (
            _client(vendor, limiter, "10.0.0.1", clock) as first,
            _client(vendor, limiter, "10.0.0.2", clock) as second,
        ):
            for _ in range(2):
                _assert_error(
                    await first.post("/v1/mak-activations", json={"v": 1}), 400, "bad_request"
                )
            limited = await first.post("/v1/mak-activations", json={"v": 1})
            _assert_error(limited, 429, "rate_limited")
            assert limited.headers["retry-after"] == "1"
            # Another address is not limited by the first one's flood.
            _assert_error(
                await second.post("/v1/mak-activations", json={"v": 1}), 400, "bad_request"
            )
            clock[0] += 1.0
            _assert_error(
                await first.post("/v1/mak-activations", json={"v": 1}), 400, "bad_request"
            )


def test_real_service_logs_json_and_stops_cleanly_on_sigterm(world: World) -> None:
    server = start_server(world, "--rate", "0")
    try:
        answer = httpx.post(server.url + "/v1/mak-activations", json={"v": 1})
        assert answer.json()["error"]["code"] == "bad_request"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=20)
    assert server.stdout == f"volact vendor listening on {server.url}\n"
    lines = server.log_lines()  # every line is JSON
    events = [line.get("event") for line in lines]
    assert "listening" in events and "mak_activation_refused" in events
    assert events[-1] == "stopped"
    assert lines[-1]["signal"] == "SIGTERM"
    assert not any("Traceback" in json.dumps(line) for line in lines)


def test_port_in_use_is_one_line(world: World) -> None:
    import socket

    from tests.authority.helpers import assert_one_line_error, run

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = run("vendor", "serve", "--dir", str(world.path), "--port", port, check=False)
    # The JSON logging is configured before the bind; the error is still one plain line.
    assert_one_line_error(done, "bad_request")


@pytest.mark.parametrize("path", ["/v1/host-activations", "/v1/mak-activations"])
async def test_wrong_content_type_is_refused(world: World, path: str) -> None:
    with world.open() as vendor:
        async with _client(vendor) as http:
            answer = await http.post(path, content=b"{}", headers={"content-type": "text/plain"})
    _assert_error(answer, 400, "bad_request")
