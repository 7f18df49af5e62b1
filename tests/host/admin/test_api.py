"""The admin API in-process: the token, the one error shape, every view, blocking."""

from __future__ import annotations

import sqlite3
import stat
import uuid
from typing import Any

import httpx
import pytest

from tests.host.conftest import Clock
from tests.host.helpers import GROUP, body, cmid
from volact.core.errors import Unauthorized, error_body
from volact.core.host_machine import Event
from volact.host.admin.token import make_token, token_path
from volact.host.service import HostService

from .conftest import Admin

pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True)

API = "/admin/v1"
GET_PATHS = ["status", "groups", "certificate", "clients", "events", "dns"]


async def activate(admin: Admin, n: int, now: int, **changes: Any) -> httpx.Response:
    return await admin.hosts.post("/v1/activate", json=body(n, now, **changes))


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    data = answer.json()
    assert set(data) == {"ok", "error"} and data["ok"] is False
    assert set(data["error"]) == {"code", "message", "details"}
    assert data["error"]["code"] == code
    return dict(data["error"])


@pytest.mark.parametrize("path", [*GET_PATHS])
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer "])
async def test_every_route_refuses_a_missing_or_wrong_token_with_401(
    admin: Admin, path: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    answer = await admin.http.get(f"{API}/{path}", headers=headers)
    error = assert_error(answer, 401, "unauthorized")
    assert answer.json() == error_body(Unauthorized(error["message"]))
    for action in ("block", "unblock"):
        posted = await admin.http.post(f"{API}/clients/{cmid(1)}/{action}", headers=headers)
        assert_error(posted, 401, "unauthorized")
    assert_error(await admin.http.get("/metrics", headers=headers), 401, "unauthorized")


async def test_the_dashboard_cookie_does_not_authenticate_the_api(admin: Admin) -> None:
    signed_in = await admin.http.post(
        "/login", data={"token": admin.token}, headers={"Origin": "http://admin.test"}
    )
    assert signed_in.status_code == 303 and "volact_admin" in signed_in.cookies
    admin.http.cookies = signed_in.cookies
    assert (await admin.http.get("/")).status_code == 200
    # A cross-site page could make the browser send the cookie, never a bearer header.
    answer = await admin.http.post(f"{API}/clients/{cmid(1)}/block")
    assert_error(answer, 401, "unauthorized")


async def test_status_groups_and_certificate_follow_activations(admin: Admin, clock: Clock) -> None:
    for n in range(3):
        assert (await activate(admin, n, clock.now)).status_code == 409  # below threshold 5
    groups = (await admin.http.get(f"{API}/groups", headers=admin.auth)).json()
    assert groups == [
        {
            "group": GROUP,
            "count": 3,
            "threshold": 5,
            "activating": False,
            "validity": groups[0]["validity"],
            "renewal_interval": groups[0]["renewal_interval"],
            "retry_interval": groups[0]["retry_interval"],
        }
    ]
    status = (await admin.http.get(f"{API}/status", headers=admin.auth)).json()
    assert status["activated"] is True and status["host_id"] == "host-test-1"
    assert status["statistics"]["by_outcome"] == {"below_threshold": 3}
    certificate = (await admin.http.get(f"{API}/certificate", headers=admin.auth)).json()
    assert certificate["certificate"]["cert_id"] == "cert-test-1"
    assert (
        certificate["certificate"]["remaining_seconds"] == 730 * 86400
    )  # not_after is now + 730 days


async def test_clients_search_by_cmid_prefix_or_machine_with_paging_and_total(
    admin: Admin, clock: Clock
) -> None:
    for n in range(12):
        await activate(admin, n, clock.now)
    page = (
        await admin.http.get(
            f"{API}/clients", params={"limit": 5, "offset": 10}, headers=admin.auth
        )
    ).json()
    assert page["total"] == 12 and page["limit"] == 5 and page["offset"] == 10
    assert [c["cmid"] for c in page["clients"]] == [cmid(10), cmid(11)]
    by_machine = (
        await admin.http.get(f"{API}/clients", params={"q": "PC-7.EXAMPLE"}, headers=admin.auth)
    ).json()
    assert [c["machine"] for c in by_machine["clients"]] == ["pc-7.example.com"]

    async def search(text: str) -> dict[str, Any]:
        answer = await admin.http.get(f"{API}/clients", params={"q": text}, headers=admin.auth)
        return dict(answer.json())

    assert [c["cmid"] for c in (await search(cmid(11)[:-1] + "b"))["clients"]] == [cmid(11)]
    assert (await search(cmid(11)[:20]))["total"] == 12  # the test CMIDs share their start
    assert (await search("ffff"))["total"] == 0


async def test_clients_show_fingerprint_changes(admin: Admin, clock: Clock) -> None:
    await activate(admin, 1, clock.now)
    await activate(admin, 1, clock.now, fingerprint="f" * 32, nonce="B" * 43)
    found = (await admin.http.get(f"{API}/clients", headers=admin.auth)).json()["clients"]
    assert found[0]["fingerprint_changes"] == 1


async def test_events_filter_by_kind_cmid_and_time(admin: Admin, clock: Clock) -> None:
    start = clock.now
    await activate(admin, 1, start)
    clock.now += 100
    await activate(admin, 2, clock.now)
    await activate(admin, 1, clock.now, fingerprint="f" * 32, nonce="C" * 43)

    async def kinds(**query: Any) -> list[tuple[str, str | None]]:
        answer = await admin.http.get(f"{API}/events", params=query, headers=admin.auth)
        assert answer.status_code == 200, answer.text
        return [(e["kind"], e["cmid"]) for e in answer.json()["events"]]

    assert await kinds(kind="cloned_image") == [("cloned_image", cmid(1))]
    assert await kinds(cmid=cmid(1), kind="activation_request") == [
        ("activation_request", cmid(1)),
        ("activation_request", cmid(1)),
    ]
    assert await kinds(kind="activation_request", until=start) == [("activation_request", cmid(1))]
    assert await kinds(kind="activation_request", since=start + 50, limit=1) == [
        ("activation_request", cmid(1))
    ]


async def test_one_cmids_events_are_found_beneath_any_number_of_newer_ones(
    admin: Admin, clock: Clock
) -> None:
    start = clock.now
    await activate(admin, 1, start)
    # 60,000 newer events of other CMIDs, written straight into the host's SQLite file (the
    # store's own writes would take minutes): more than the admin views used to scan.
    newer = [
        (start + 1 + n // 100, "activation_request", str(uuid.UUID(int=10_000 + n)), GROUP, "{}")
        for n in range(60_000)
    ]
    with sqlite3.connect(admin.directory / "host.db") as db:
        db.executemany(
            "INSERT INTO events (at, kind, cmid, group_id, details) VALUES (?, ?, ?, ?, ?)", newer
        )

    async def events(**query: Any) -> list[dict[str, Any]]:
        answer = await admin.http.get(f"{API}/events", params=query, headers=admin.auth)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["events"])

    mine = await events(cmid=cmid(1))
    assert [(e["kind"], e["cmid"], e["at"]) for e in mine] == [
        ("activation_request", cmid(1), mine[0]["at"])
    ]
    assert mine[0]["details"]["machine"] == "pc-1.example.com"
    assert [e["cmid"] for e in await events(until=start, kind="activation_request")] == [cmid(1)]
    assert len(await events(since=start + 1, until=start + 1, limit=1000)) == 100


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "x"},
        {"offset": "-1"},
        {"since": "yesterday"},
        {"cmid": "not-a-uuid"},
        {"blocked": "maybe"},
    ],
)
async def test_bad_parameters_are_400_in_the_one_shape(admin: Admin, query: dict[str, str]) -> None:
    path = "events" if set(query) & {"since", "cmid"} else "clients"
    answer = await admin.http.get(f"{API}/{path}", params=query, headers=admin.auth)
    assert_error(answer, 400, "bad_request")


async def test_block_then_the_next_activation_is_client_blocked_and_unblock_readmits(
    admin: Admin, clock: Clock
) -> None:
    await activate(admin, 1, clock.now)
    blocked = await admin.http.post(f"{API}/clients/{cmid(1)}/block", headers=admin.auth)
    assert blocked.json() == {"cmid": cmid(1), "blocked": True, "groups": 1}
    refused = await activate(admin, 1, clock.now, nonce="D" * 43)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "client_blocked"
    listed = await admin.http.get(f"{API}/clients", params={"blocked": "true"}, headers=admin.auth)
    assert [c["cmid"] for c in listed.json()["clients"]] == [cmid(1)]
    await admin.http.post(f"{API}/clients/{cmid(1)}/unblock", headers=admin.auth)
    again = await activate(admin, 1, clock.now, nonce="E" * 43)
    assert again.json()["error"]["code"] == "count_insufficient"


async def test_blocking_an_unknown_or_malformed_cmid(admin: Admin) -> None:
    unknown = await admin.http.post(f"{API}/clients/{cmid(99)}/block", headers=admin.auth)
    assert_error(unknown, 404, "not_found")
    malformed = await admin.http.post(f"{API}/clients/xyz/block", headers=admin.auth)
    assert_error(malformed, 400, "bad_request")


async def test_unknown_paths_and_methods_stay_in_the_one_shape(admin: Admin) -> None:
    assert_error(await admin.http.get(f"{API}/nothing", headers=admin.auth), 404, "not_found")
    assert_error(await admin.http.delete(f"{API}/status", headers=admin.auth), 405, "bad_request")


async def test_the_token_file_is_private_and_rotation_takes_effect_at_once(admin: Admin) -> None:
    assert stat.S_IMODE(token_path(admin.directory).stat().st_mode) == 0o600
    assert (await admin.http.get(f"{API}/status", headers=admin.auth)).status_code == 200
    old = admin.auth
    admin.token = make_token(admin.directory)
    assert_error(await admin.http.get(f"{API}/status", headers=old), 401, "unauthorized")
    assert (await admin.http.get(f"{API}/status", headers=admin.auth)).status_code == 200


async def test_dns_is_empty_before_any_publishing(admin: Admin) -> None:
    assert (await admin.http.get(f"{API}/dns", headers=admin.auth)).json() == []


async def test_metrics_count_requests_by_outcome(admin: Admin, clock: Clock) -> None:
    await activate(admin, 1, clock.now)
    await activate(admin, 2, clock.now, v=99)
    text = (await admin.http.get("/metrics", headers=admin.auth)).text
    assert 'volact_requests_total{outcome="count_insufficient"} 1.0' in text
    assert 'volact_requests_total{outcome="unsupported_version"} 1.0' in text
    assert "volact_request_duration_seconds_count 2.0" in text
    assert f'volact_group_count{{group="{GROUP}"}} 1.0' in text
    assert f'volact_group_threshold{{group="{GROUP}"}} 5.0' in text
    assert f'volact_known_clients{{group="{GROUP}"}} 1.0' in text
    assert "volact_store_batch_size_count" in text


async def test_dns_publishing_results_in_the_api_and_the_metrics(
    admin: Admin, service: HostService, clock: Clock
) -> None:
    details = {"name": "_volact._tcp.corp.example.", "target": "kms1.corp.example.", "port": 7688}
    await service.store.record_event(
        Event("dns_published", clock.now - 10, details={"domain": "corp.example", **details})
    )
    await service.store.record_event(
        Event(
            "dns_publish_failed",
            clock.now,
            details={"domain": "lab.example", "reason": "refused", "error": "REFUSED"},
        )
    )
    results = (await admin.http.get(f"{API}/dns", headers=admin.auth)).json()
    assert [(r["domain"], r["ok"]) for r in results] == [
        ("corp.example", True),
        ("lab.example", False),
    ]
    text = (await admin.http.get("/metrics", headers=admin.auth)).text
    assert 'volact_dns_publish_success{domain="corp.example"} 1.0' in text
    assert 'volact_dns_publish_success{domain="lab.example"} 0.0' in text
    stamps = [line for line in text.splitlines() if line.startswith("volact_dns_publish_timestamp")]
    assert [float(line.rsplit(" ", 1)[1]) for line in stamps] == [clock.now - 10, clock.now]
