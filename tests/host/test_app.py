"""The host service and app in-process (httpx.ASGITransport), on a memory and a SQLite store."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from volact import __version__
from volact.core import keys
from volact.core.errors import BadRequest
from volact.core.host_machine import Event
from volact.core.policy import GroupPolicy
from volact.core.tickets import verify_activation
from volact.host.app import create_app
from volact.host.service import HostService
from volact.store import MemoryStore, SQLiteStore, Store

from .conftest import Clock
from .helpers import DAY, GROUP, PRODUCT, VENDOR, CertifiedHost, body, cmid, make_host


async def test_health_says_the_host_is_activated(client: httpx.AsyncClient, clock: Clock) -> None:
    response = await client.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "activated": True,
        "host_id": "host-test-1",
        "groups": [GROUP],
        "version": __version__,
        "time": clock.now,
    }


async def test_the_threshold_is_reached_exactly_at_the_fifth_distinct_client(
    client: httpx.AsyncClient, host: CertifiedHost, clock: Clock
) -> None:
    for n in range(4):
        response = await client.post("/v1/activate", json=body(n, clock.now))
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "count_insufficient"
        assert error["details"] == {"count": n + 1, "threshold": 5, "retry_interval": 7200}
        assert f"{n + 1} of 5" in error["message"]
    response = await client.post("/v1/activate", json=body(4, clock.now))
    assert response.status_code == 200
    answer = response.json()
    assert answer["ok"] is True and (answer["count"], answer["threshold"]) == (5, 5)
    activation = verify_activation(
        host.descriptor,
        answer["ticket"],
        answer["host_certificate"],
        cmid=cmid(4),
        fingerprint=f"{4:032x}",
        nonce=body(4, clock.now)["nonce"],
    )
    assert activation.ticket.valid_until == clock.now + 180 * DAY
    assert activation.ticket.issued_at == clock.now
    # The first client now activates too; asking again does not count it twice.
    again = await client.post("/v1/activate", json=body(0, clock.now))
    assert again.status_code == 200 and again.json()["count"] == 5


async def test_blocked_clients_are_refused_and_not_counted(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    for n in range(3):
        await client.post("/v1/activate", json=body(n, clock.now))
    await service.store.block(cmid(1), clock.now)
    response = await client.post("/v1/activate", json=body(1, clock.now))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "client_blocked"
    assert response.json()["error"]["details"] == {"cmid": cmid(1)}
    response = await client.post("/v1/activate", json=body(3, clock.now))
    assert response.json()["error"]["details"]["count"] == 3  # 0, 2 and 3; not 1
    assert await service.store.counts(clock.now) == {GROUP: 3}


async def test_a_skewed_client_clock_is_refused_and_not_counted(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    skewed = body(0, clock.now + 4 * 3600 + 1)
    response = await client.post("/v1/activate", json=skewed)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "time_skew"
    assert error["details"] == {
        "host_time": clock.now,
        "client_time": clock.now + 4 * 3600 + 1,
        "tolerance": 4 * 3600,
    }
    assert await service.store.clients() == []
    ok = await client.post("/v1/activate", json=body(0, clock.now - 4 * 3600))
    assert ok.json()["error"]["code"] == "count_insufficient"  # 4 h exactly is accepted
    stats = await service.store.stats()
    assert stats.by_outcome == {"below_threshold": 1, "time_skew": 1}
    assert stats.by_state == {"oob_grace": 2}


async def test_a_cloned_image_is_recorded(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    await client.post("/v1/activate", json=body(0, clock.now))
    await client.post("/v1/activate", json=body(0, clock.now, fingerprint="f" * 32))
    events = await service.store.events(kind="cloned_image")
    assert len(events) == 1
    assert events[0].cmid == cmid(0)
    assert events[0].details["new_fingerprint"] == "f" * 32
    request_event = (await service.store.events(kind="activation_request"))[0]
    assert request_event.details["state"] == "oob_grace"
    assert request_event.details["address"] == "127.0.0.1"


async def test_keys_and_products_the_host_does_not_serve(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    other_group = keys.make_gvlk(VENDOR, "design-2026", "paint-2026").text
    response = await client.post(
        "/v1/activate", json=body(0, clock.now, product="paint-2026", key=other_group)
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "product_not_hosted"
    assert response.json()["error"]["details"] == {"product": "paint-2026"}
    response = await client.post(
        "/v1/activate", json=body(0, clock.now, key="BCDFG-HJKMP-QRTVW-XY234-67899")
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_key"


async def test_a_gvlk_of_another_vendor_or_product_is_an_invalid_key(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    for key in (
        keys.make_gvlk("evil", GROUP, PRODUCT).text,
        keys.make_gvlk(VENDOR, GROUP, "calc-2026").text,
    ):
        response = await client.post("/v1/activate", json=body(0, clock.now, key=key))
        assert response.json()["error"]["code"] == "invalid_key"


async def test_statistics_and_events_are_kept(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    for n in range(6):
        await client.post("/v1/activate", json=body(n, clock.now, state="licensed"))
    await client.post(
        "/v1/activate",
        json=body(9, clock.now, key="BCDFG-HJKMP-QRTVW-XY234-67899", state="licensed"),
    )
    stats = await service.store.stats()
    assert (stats.total, stats.failed) == (7, 1)
    assert stats.by_outcome == {"activated": 2, "below_threshold": 4, "invalid_key": 1}
    assert stats.by_state == {"licensed": 7}
    kinds = [event.kind for event in await service.store.events(limit=100)]
    assert kinds.count("activation_request") == 7 and kinds[-1] == "host_started"


async def test_event_retention_prunes_old_and_surplus_events(
    host: CertifiedHost, clock: Clock
) -> None:
    store = MemoryStore()
    service = HostService.from_files(
        host.files, store, clock, event_retention=10 * DAY, event_rows=3, maintenance_interval=0
    )
    async with service:
        for n in range(5):
            await store.record_event(Event("note", clock.now - 20 * DAY + n, details={"n": n}))
        for n in range(5):
            await store.record_event(Event("note", clock.now + n, details={"n": 10 + n}))
        assert await service.prune_events() == 8  # 5 too old (with host_started kept), then 3 kept
        assert [e.details["n"] for e in await store.events()] == [14, 13, 12]


async def test_the_rate_limit_answers_429_with_retry_after(
    host: CertifiedHost, clock: Clock
) -> None:
    async with HostService.from_files(host.files, MemoryStore(), clock) as service:
        app = create_app(service, rate_limit=1, burst=2, monotonic=lambda: 100.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as http:
            assert (await http.get("/v1/health")).status_code == 200
            assert (await http.post("/v1/activate", json=body(0, clock.now))).status_code == 409
            response = await http.post("/v1/activate", json=body(1, clock.now))
            assert response.status_code == 429
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"]["code"] == "rate_limited"
            assert response.json()["error"]["details"] == {"retry_after": 1}
        assert len(await service.store.clients()) == 1


async def test_each_request_is_logged_once_without_secrets(
    client: httpx.AsyncClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="volact.host.access")
    request = body(0, clock.now)
    await client.post("/v1/activate", json=request)
    await client.get("/nowhere")
    records = [r for r in caplog.records if r.name == "volact.host.access"]
    assert len(records) == 2
    first, second = (getattr(record, "fields") for record in records)  # noqa: B009
    assert first["method"] == "POST" and first["path"] == "/v1/activate"
    assert (first["status"], first["code"]) == (409, "count_insufficient")
    assert first["client"] == "127.0.0.1" and first["ms"] >= 0
    assert (second["status"], second.get("code")) == (404, None)
    text = " ".join(str(r.__dict__) for r in caplog.records)
    assert request["key"] not in text and request["nonce"] not in text


@pytest.mark.parametrize("certified", [False, True])
async def test_a_host_without_a_usable_certificate_answers_host_not_activated(
    tmp_path: Path, clock: Clock, certified: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from volact import crypto

    # Either no certificate at all, or one issued for somebody else's host key.
    host = make_host(
        tmp_path / "h",
        clock.now,
        certified=certified,
        host_key_of_certificate=crypto.SigningKey.generate().public_key,
    )
    store = MemoryStore()
    async with HostService.from_files(host.files, store, clock) as service:
        assert service.certificate_status.reason
        app = create_app(service, rate_limit=0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as http:
            health = (await http.get("/v1/health")).json()
            assert health["activated"] is False and health["groups"] == []
            response = await http.post("/v1/activate", json=body(0, clock.now))
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "host_not_activated"
        assert error["details"] == {"retry_interval": 7200}
        assert "volact host activate" in error["message"]
        assert await store.clients() == []
    reason = "another host key" if certified else "not certified yet"
    assert any(reason in record.getMessage() for record in caplog.records)


async def test_an_expired_certificate_stops_activation(
    client: httpx.AsyncClient, service: HostService, clock: Clock
) -> None:
    clock.now += 731 * DAY
    response = await client.post("/v1/activate", json=body(0, clock.now))
    assert response.json()["error"]["code"] == "host_not_activated"
    assert (await client.get("/v1/health")).json()["activated"] is False
    assert "expired" in service.certificate_status.explain(clock.now)


async def test_admin_intervals_outside_the_vendor_bounds_fail_at_start(
    host: CertifiedHost, clock: Clock
) -> None:
    host.files.save_settings(replace(host.settings, renewal_interval=60))
    with pytest.raises(BadRequest, match="renewal_interval"):
        HostService.from_files(host.files, MemoryStore(), clock)


async def test_admin_intervals_inside_the_bounds_go_into_tickets(
    tmp_path: Path, clock: Clock
) -> None:
    host = make_host(tmp_path / "h", clock.now, groups={GROUP: GroupPolicy(threshold=1)})
    host.files.save_settings(replace(host.settings, renewal_interval=DAY, retry_interval=3600))
    async with HostService.from_files(host.files, MemoryStore(), clock) as service:
        answer = await service.activate(body(0, clock.now), "10.0.0.1")
    activation = verify_activation(
        host.descriptor,
        answer["ticket"],
        answer["host_certificate"],
        cmid=cmid(0),
        fingerprint=f"{0:032x}",
    )
    assert (activation.ticket.renewal_interval, activation.ticket.retry_interval) == (DAY, 3600)
    assert activation.ticket.product == PRODUCT


async def test_a_storage_failure_is_answered_plainly(host: CertifiedHost, clock: Clock) -> None:
    store: Store = SQLiteStore(host.directory / "host.db")
    service = HostService.from_files(host.files, store, clock, maintenance_interval=0)
    await service.start()
    await store.close()  # the database goes away under the running service
    app = create_app(service, rate_limit=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://h") as http:
        response = await http.post("/v1/activate", json=body(0, clock.now))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "storage_error"
    assert str(host.directory) not in error["message"]  # paths stay in the host's log
    assert error["details"] == {"retry_interval": 7200}
    await service.stop()
