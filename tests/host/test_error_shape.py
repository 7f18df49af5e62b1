"""Locks the one error shape of SPEC §6 for every code the host can answer with."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from volact.core import keys
from volact.core.errors import CODES, CountInsufficient
from volact.core.host_machine import Decision
from volact.host.app import create_app
from volact.host.service import HostService
from volact.store import MemoryStore, SQLiteStore
from volact.web import STATUS

from .conftest import Clock
from .helpers import CertifiedHost, body, cmid, make_host

# Every code the host emits, with its status (the 413 / 405 variants are bad_request too).
HOST_CODES = {
    "bad_request": 400,
    "not_found": 404,
    "unsupported_version": 400,
    "invalid_key": 422,
    "product_not_hosted": 403,
    "count_insufficient": 409,
    "time_skew": 409,
    "client_blocked": 403,
    "rate_limited": 429,
    "host_not_activated": 503,
    "storage_error": 503,
    "internal": 500,
}


def assert_error_shape(response: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == {"ok", "error"}
    assert data["ok"] is False
    error = data["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code and code in CODES
    assert isinstance(error["message"], str) and error["message"].strip()
    assert "\n" not in error["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert isinstance(error["details"], dict)
    return dict(error)


class BrokenStore(MemoryStore):
    """A store with a bug: activate raises something that is not a VolactError."""

    async def activate(self, *args: Any, **kwargs: Any) -> Decision:
        raise RuntimeError("bug: /secret/path/host.db exploded")


@pytest.fixture
async def http(host: CertifiedHost, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with HostService.from_files(host.files, MemoryStore(), clock) as service:
        app = create_app(service, rate_limit=0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as client:
            yield client


def test_the_table_matches_the_codes_and_statuses() -> None:
    for code, status in HOST_CODES.items():
        assert CODES[code].where in {"host", "any"}
        assert STATUS[code] == status


async def test_malformed_and_misrouted_requests(http: httpx.AsyncClient, clock: Clock) -> None:
    headers = {"content-type": "application/json"}
    assert_error_shape(
        await http.post("/v1/activate", content=b"{", headers=headers), "bad_request", 400
    )
    huge = b'{"a": "' + b"x" * 17_000 + b'"}'
    error = assert_error_shape(
        await http.post("/v1/activate", content=huge, headers=headers), "bad_request", 413
    )
    assert error["details"] == {"limit": 16384}
    assert_error_shape(await http.get("/v1/activate"), "bad_request", 405)
    assert_error_shape(await http.post("/v1/health"), "bad_request", 405)
    assert_error_shape(await http.get("/v2/activate"), "not_found", 404)
    error = assert_error_shape(
        await http.post("/v1/activate", json=body(0, clock.now, v=2)), "unsupported_version", 400
    )
    assert error["details"] == {"supported": [1]}


async def test_every_refusal_of_the_service(
    http: httpx.AsyncClient, host: CertifiedHost, clock: Clock
) -> None:
    bad_key = body(0, clock.now, key="BCDFG-HJKMP-QRTVW-XY234-67899")
    assert_error_shape(await http.post("/v1/activate", json=bad_key), "invalid_key", 422)
    other_key = keys.make_gvlk("acme", "design-2026", "paint-2026").text
    other = body(0, clock.now, product="paint-2026", key=other_key)
    assert_error_shape(await http.post("/v1/activate", json=other), "product_not_hosted", 403)
    error = assert_error_shape(
        await http.post("/v1/activate", json=body(0, clock.now)), "count_insufficient", 409
    )
    assert set(error["details"]) == {"count", "threshold", "retry_interval"}
    skewed = body(1, clock.now + 86400)
    error = assert_error_shape(await http.post("/v1/activate", json=skewed), "time_skew", 409)
    assert set(error["details"]) == {"host_time", "client_time", "tolerance"}


async def test_blocked_limited_unactivated_storage_and_internal(
    tmp_path: Path, host: CertifiedHost, clock: Clock
) -> None:
    store = MemoryStore()
    async with HostService.from_files(host.files, store, clock) as service:
        with contextlib.suppress(CountInsufficient):
            await service.activate(body(0, clock.now), "x")
        await store.block(cmid(0), clock.now)
        app = create_app(service, rate_limit=1, burst=1, monotonic=lambda: 5.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as http:
            blocked = await http.post("/v1/activate", json=body(0, clock.now))
            assert_error_shape(blocked, "client_blocked", 403)
            limited = await http.post("/v1/activate", json=body(0, clock.now))
            assert_error_shape(limited, "rate_limited", 429)
            assert limited.headers["retry-after"] == "1"

    unactivated = make_host(tmp_path / "u", clock.now, certified=False)
    sqlite = SQLiteStore(tmp_path / "u" / "host.db")
    async with HostService.from_files(unactivated.files, sqlite, clock) as service:
        transport = httpx.ASGITransport(app=create_app(service, rate_limit=0))
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as http:
            response = await http.post("/v1/activate", json=body(0, clock.now))
            assert_error_shape(response, "host_not_activated", 503)
            await sqlite.close()  # the database goes away
            response = await http.post("/v1/activate", json=body(0, clock.now))
            assert_error_shape(response, "storage_error", 503)

    async with HostService.from_files(host.files, BrokenStore(), clock) as service:
        transport = httpx.ASGITransport(app=create_app(service, rate_limit=0))
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as http:
            response = await http.post("/v1/activate", json=body(0, clock.now))
            error = assert_error_shape(response, "internal", 500)
            assert "secret" not in response.text and error["details"] == {}
