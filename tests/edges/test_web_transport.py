from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from volact.core.errors import (
    BadRequest,
    CountInsufficient,
    HostUnreachable,
    RateLimited,
    TimeSkew,
)
from volact.net.transport import ASGITransportAdapter, HTTPTransport, _interpret
from volact.web import RateLimiter, exception_handlers, guarded, read_json


async def echo(request: Request) -> Response:
    body = await read_json(request, limit=64)
    if body == {"fail": "skew"}:
        raise TimeSkew("off by 5 hours", {"skew": 18000})
    if body == {"fail": "boom"}:
        raise RuntimeError("secret internals")
    return JSONResponse({"ok": True, "echo": body})


def app() -> Starlette:
    return Starlette(
        routes=[Route("/echo", guarded(echo), methods=["POST"])],
        exception_handlers=exception_handlers(),
    )


async def post(
    content: bytes, headers: dict[str, str] | None = None, path: str = "/echo"
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post(path, content=content, headers=headers or {})


async def test_good_body() -> None:
    response = await post(b'{"a": 1}', {"content-type": "application/json"})
    assert response.json() == {"ok": True, "echo": {"a": 1}}


@pytest.mark.parametrize(
    ("content", "headers", "status", "fragment"),
    [
        (b"x" * 65, {}, 413, "larger than 64"),
        (b"{}", {"content-length": "100000"}, 413, "larger than 64"),
        (b"", {}, 400, "empty"),
        (b"{nope", {}, 400, "not valid JSON"),
        (b"{}", {"content-type": "text/plain"}, 400, "application/json"),
        (b'{"fail": "skew"}', {}, 409, "off by 5 hours"),
        (b'{"fail": "boom"}', {}, 500, "unexpected error"),
    ],
)
async def test_errors_have_the_one_shape(
    content: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = await post(content, headers)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"ok", "error"} and body["ok"] is False
    assert set(body["error"]) == {"code", "message", "details"}
    assert fragment in body["error"]["message"]
    assert "secret internals" not in response.text and "Traceback" not in response.text


async def test_unknown_paths_and_methods() -> None:
    response = await post(b"{}", path="/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/echo")
    assert response.status_code == 405 and response.json()["error"]["code"] == "bad_request"


async def test_chunked_body_over_the_limit_is_refused() -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 16

    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/echo", content=chunks())
    assert response.status_code == 413


def test_rate_limiter() -> None:
    limiter = RateLimiter(rate=2, burst=2)
    limiter.check("a", 0.0)
    limiter.check("a", 0.0)
    with pytest.raises(RateLimited) as info:
        limiter.check("a", 0.0)
    assert info.value.details["retry_after"] == 1
    limiter.check("b", 0.0)  # another address has its own bucket
    limiter.check("a", 0.6)  # refilled
    RateLimiter(rate=0).check("a", 0.0)
    small = RateLimiter(rate=1, burst=1, max_clients=2)
    for name in "xyz":
        small.check(name, 0.0)
    assert len(small._buckets) == 2


def test_transport_interprets_bodies() -> None:
    assert _interpret("u", 200, b'{"ok": true, "x": 1}') == {"ok": True, "x": 1}
    with pytest.raises(CountInsufficient) as info:
        _interpret(
            "u",
            409,
            json.dumps(
                {
                    "ok": False,
                    "error": {
                        "code": "count_insufficient",
                        "message": "4 of 5",
                        "details": {"count": 4},
                    },
                }
            ).encode(),
        )
    assert info.value.details == {"count": 4}
    for status, content in [
        (200, b"<html>"),
        (200, b"[]"),
        (500, b'{"ok": false}'),
        (200, b"x" * 70000),
    ]:
        with pytest.raises(HostUnreachable):
            _interpret("u", status, content)
    with pytest.raises(BadRequest):
        _interpret(
            "u",
            400,
            b'{"ok": false, "error": {"code": "bad_request", "message": 5, "details": []}}',
        )


def test_http_transport_refused_connection() -> None:
    with pytest.raises(HostUnreachable, match="cannot reach"):
        HTTPTransport(timeout=2).post_json("http://127.0.0.1:9/v1/activate", {})


def test_asgi_adapter_runs_the_real_app() -> None:
    adapter = ASGITransportAdapter(app())
    assert adapter.post_json("http://x/echo", {"a": 2}) == {"ok": True, "echo": {"a": 2}}
    with pytest.raises(TimeSkew):
        adapter.post_json("http://x/echo", {"fail": "skew"})
