from __future__ import annotations

import base64
import http.server
import json
import threading
from typing import Any, ClassVar

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
from volact.net.transport import (
    MAX_VENDOR_ANSWER_BYTES,
    ASGITransportAdapter,
    HTTPTransport,
    VendorAnswers,
    interpret,
    vendor_transport,
)
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
    assert interpret("u", 200, b'{"ok": true, "x": 1}') == {"ok": True, "x": 1}
    with pytest.raises(CountInsufficient) as info:
        interpret(
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
            interpret("u", status, content)
    with pytest.raises(BadRequest):
        interpret(
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


def test_the_vendor_services_answers_read_as_the_vendor_calls_always_said() -> None:
    """Towards the vendor service, an answer that is not the service's is ``bad_request`` (the
    vendor URL is wrong), and a refused connection names the vendor service."""
    answers = VendorAnswers()
    for status, content, message in [
        (501, b"<html>", "without a volact answer; is the vendor URL right"),
        (200, b"[]", "without a volact answer; is the vendor URL right"),
        (500, b'{"ok": false}', "with an unknown shape"),
        (200, b"x" * (MAX_VENDOR_ANSWER_BYTES + 1), "sent an oversized answer"),
    ]:
        with pytest.raises(BadRequest, match=message):
            interpret("http://v/x", status, content, MAX_VENDOR_ANSWER_BYTES, answers)
    # An answer the size of a host's limit is fine from the vendor (root keys, certificates).
    big = json.dumps({"ok": True, "pad": "x" * 70000}).encode()
    assert interpret("http://v/x", 200, big, MAX_VENDOR_ANSWER_BYTES, answers)["ok"] is True
    with pytest.raises(HostUnreachable, match="cannot reach the vendor service at"):
        vendor_transport().post_json("http://127.0.0.1:9/v1/mak-activations", {})


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself and remembers what it was asked."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.dumps({"ok": True, "via": "proxy"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_vendor_service_is_reached_through_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host or a MAK client reaches the vendor through the company's proxy; a host inside
    the network is asked directly, whatever the environment says."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
        answer = vendor_transport().post_json("http://vendor.invalid/v1/mak-activations", {})
        assert answer == {"ok": True, "via": "proxy"}
        assert _Proxy.seen == ["POST http://vendor.invalid/v1/mak-activations"]
        with pytest.raises(HostUnreachable):
            HTTPTransport(timeout=5).post_json("http://host.invalid/v1/activate", {})
        assert len(_Proxy.seen) == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _AuthProxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that remembers each request line and its Proxy-Authorization, answers
    POSTs itself and refuses tunnels (CONNECT)."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_POST(self) -> None:
        self.seen.append((f"{self.command} {self.path}", self.headers.get("proxy-authorization")))
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.dumps({"ok": True, "via": "proxy"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        self.seen.append((f"{self.command} {self.path}", self.headers.get("proxy-authorization")))
        self.send_response(403)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_proxy_gets_its_credentials_and_https_goes_through_a_tunnel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        proxy = f"http://ann%40corp:s3cret@127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        answer = vendor_transport().post_json("http://vendor.invalid/v1/mak-activations", {})
        assert answer == {"ok": True, "via": "proxy"}
        with pytest.raises(HostUnreachable, match="cannot reach the vendor service"):
            vendor_transport().post_json("https://vendor.invalid/v1/mak-activations", {})
        credentials = "Basic " + base64.b64encode(b"ann@corp:s3cret").decode()
        assert _AuthProxy.seen == [
            ("POST http://vendor.invalid/v1/mak-activations", credentials),
            ("CONNECT vendor.invalid:443", credentials),
        ]
        monkeypatch.setenv("NO_PROXY", "vendor.invalid")
        with pytest.raises(HostUnreachable):  # asked directly: the name does not resolve
            vendor_transport().post_json("http://vendor.invalid/v1/mak-activations", {})
        assert len(_AuthProxy.seen) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
