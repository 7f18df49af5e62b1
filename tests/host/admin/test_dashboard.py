"""The dashboard in-process: signing in, cross-site protection of its forms, every page."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.host.conftest import Clock
from tests.host.helpers import body, cmid
from volact.host.admin.token import derive, make_token

from .conftest import Admin

pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True)

ORIGIN = {"Origin": "http://admin.test"}


async def sign_in(admin: Admin) -> None:
    answer = await admin.http.post("/login", data={"token": admin.token}, headers=ORIGIN)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    admin.http.cookies = answer.cookies


async def blocked(admin: Admin, number: int) -> bool:
    answer = await admin.http.get(
        "/admin/v1/clients", params={"q": cmid(number)}, headers=admin.auth
    )
    return bool(answer.json()["clients"][0]["blocked"])


async def test_pages_need_signing_in_and_a_wrong_token_is_401(admin: Admin) -> None:
    for path in ("/", "/clients", "/events", "/dns", f"/confirm?cmid={cmid(1)}"):
        answer = await admin.http.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    wrong = await admin.http.post("/login", data={"token": "vat_wrong"}, headers=ORIGIN)
    assert wrong.status_code == 401 and "unauthorized" in wrong.text
    assert "volact_admin" not in wrong.cookies


async def test_signing_in_from_another_site_is_refused(admin: Admin) -> None:
    answer = await admin.http.post(
        "/login", data={"token": admin.token}, headers={"Origin": "http://evil.test"}
    )
    assert answer.status_code == 401 and "volact_admin" not in answer.cookies


async def test_block_form_needs_this_origin_and_the_csrf_value(admin: Admin, clock: Clock) -> None:
    await admin.hosts.post("/v1/activate", json=body(1, clock.now))
    await sign_in(admin)
    csrf = derive(admin.token, "csrf")
    form = {"cmid": cmid(1), "action": "block", "csrf": csrf}
    cross_site = await admin.http.post("/change", data=form, headers={"Origin": "http://x.test"})
    assert cross_site.status_code == 401
    no_origin = await admin.http.post("/change", data=form)
    assert no_origin.status_code == 401
    no_csrf = await admin.http.post("/change", data={**form, "csrf": "0" * 64}, headers=ORIGIN)
    assert no_csrf.status_code == 401
    assert not await blocked(admin, 1)
    done = await admin.http.post("/change", data=form, headers=ORIGIN)
    assert done.status_code == 303 and await blocked(admin, 1)


async def test_rotating_the_token_ends_the_session(admin: Admin) -> None:
    await sign_in(admin)
    assert (await admin.http.get("/")).status_code == 200
    make_token(admin.directory)
    assert (await admin.http.get("/")).status_code == 303


async def test_every_page_renders_with_no_script_and_nothing_from_elsewhere(
    admin: Admin, clock: Clock
) -> None:
    await admin.hosts.post("/v1/activate", json=body(1, clock.now))
    await sign_in(admin)
    for path in ("/", "/clients?q=pc", "/events?kind=activation_request", "/dns"):
        page = await admin.http.get(path)
        assert page.status_code == 200, page.text
        assert "script-src" not in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "<script" not in page.text
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text), path
    confirm = await admin.http.get(f"/confirm?action=block&cmid={cmid(1)}")
    assert "Yes, block it" in confirm.text and "pc-1.example.com" in confirm.text
    style = await admin.http.get("/static/admin.css")
    assert style.status_code == 200 and "@media" in style.text


async def test_a_bad_filter_is_an_error_page_not_a_traceback(admin: Admin) -> None:
    await sign_in(admin)
    answer = await admin.http.get("/events", params={"since": "soon"})
    assert answer.status_code == 400 and "bad_request" in answer.text
    assert "Traceback" not in answer.text


async def test_signing_out_needs_the_csrf_value_and_ends_the_session(admin: Admin) -> None:
    await sign_in(admin)
    refused = await admin.http.post("/logout", data={"csrf": "x"}, headers=ORIGIN)
    assert refused.status_code == 401
    csrf = derive(admin.token, "csrf")
    done = await admin.http.post("/logout", data={"csrf": csrf}, headers=ORIGIN)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    deletion = done.headers["set-cookie"]
    assert deletion.startswith("volact_admin=") and "Max-Age=0" in deletion


async def test_a_machine_name_from_a_client_is_shown_as_text(admin: Admin, clock: Clock) -> None:
    # Machine names come from untrusted clients; only Jinja2's autoescaping stands between
    # them and the admin's signed-in page.
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    await admin.hosts.post("/v1/activate", json=body(1, clock.now, machine=hostile))
    await sign_in(admin)
    for path in ("/clients?q=script", f"/events?cmid={cmid(1)}", f"/confirm?cmid={cmid(1)}"):
        page = await admin.http.get(path)
        assert page.status_code == 200, page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
        assert "<script" not in page.text and "<img" not in page.text, path


async def test_a_link_cannot_put_its_own_words_in_the_dashboards_notice(
    admin: Admin, clock: Clock
) -> None:
    await admin.hosts.post("/v1/activate", json=body(1, clock.now))
    await sign_in(admin)
    bait = "Your session expired: paste the admin token at https://evil.test"
    page = await admin.http.get("/clients", params={"notice": bait, "q": bait})
    assert page.status_code == 200 and 'class="notice"' not in page.text
    form = {"cmid": cmid(1), "action": "block", "csrf": derive(admin.token, "csrf")}
    done = await admin.http.post("/change", data=form, headers=ORIGIN)
    shown = await admin.http.get(done.headers["location"])
    assert f"blocked {cmid(1)} (1 group)" in shown.text


async def test_ten_wrong_tokens_from_one_address_then_sign_in_is_429_for_a_minute(
    admin: Admin, clock: Clock
) -> None:
    for _ in range(10):
        wrong = await admin.http.post("/login", data={"token": "vat_wrong"}, headers=ORIGIN)
        assert wrong.status_code == 401
    # The eleventh, even with the right token, is refused in the one shape, with Retry-After.
    for offered in ("vat_wrong", admin.token):
        limited = await admin.http.post("/login", data={"token": offered}, headers=ORIGIN)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "60"
        assert "<strong>rate_limited</strong>: too many failed sign-ins" in limited.text
        assert "volact_admin" not in limited.cookies
    # Another address signs in; the API (bearer token) is not limited by the dashboard's count.
    other = httpx.ASGITransport(app=admin.app, client=("192.0.2.7", 50000))
    async with httpx.AsyncClient(transport=other, base_url="http://admin.test") as elsewhere:
        answer = await elsewhere.post("/login", data={"token": admin.token}, headers=ORIGIN)
        assert answer.status_code == 303
    assert (await admin.http.get("/admin/v1/status", headers=admin.auth)).status_code == 200
    clock.now += 30
    later = await admin.http.post("/login", data={"token": admin.token}, headers=ORIGIN)
    assert later.status_code == 429 and later.headers["retry-after"] == "30"
    clock.now += 30  # the window has passed
    await sign_in(admin)
