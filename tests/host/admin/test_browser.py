"""The dashboard in Debian's chromium, driven by Playwright, against a real `volact host serve`
and real `volact client` processes: sign in with the token, watch the count rise as clients
activate, block a client and see its next activation refused with client_blocked.

Screenshots (laptop 1366×860 and phone 390×844) are written to ``artifacts/dashboard/`` at the
top of the repository (ignored by git), or to ``$VOLACT_ARTIFACTS/dashboard``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.client.conftest import GROUP, Machine, make_host_dir, one_line_error
from tests.factories import Vendor
from tests.host.conftest import ServedHost
from tests.ports import free_port
from volact.core.host_machine import Event
from volact.host.admin.token import ensure_token
from volact.store import SQLiteStore

from .conftest import wait_for_admin

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("VOLACT_ARTIFACTS", ROOT / "artifacts")) / "dashboard"
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def record_dns_results(database: Path, now: int) -> None:
    async def record() -> None:
        store = SQLiteStore(database, background_checkpoints=False)
        await store.open()
        try:
            await store.record_event(
                Event(
                    "dns_published",
                    now - 60,
                    details={
                        "domain": "corp.example",
                        "name": "_volact._tcp.corp.example.",
                        "target": "kms1.corp.example.",
                        "port": 7688,
                        "server": "10.0.0.53",
                    },
                )
            )
            await store.record_event(
                Event(
                    "dns_publish_failed",
                    now,
                    details={
                        "domain": "lab.example",
                        "reason": "refused",
                        "error": "the server answered REFUSED",
                        "server": "10.0.0.53",
                    },
                )
            )
        finally:
            await store.close()

    # Playwright's sync API runs an event loop in this thread: the store gets a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, record()).result()


def test_sign_in_watch_the_count_block_a_client(
    tmp_path: Path, browser: object, serve_host: Callable[..., ServedHost]
) -> None:
    now = int(time.time())
    vendor = Vendor()
    descriptor = tmp_path / "writer.json"
    descriptor.write_text(vendor.descriptor().to_file())
    host_dir = make_host_dir(vendor, tmp_path / "host", now=now).directory  # threshold 5
    token, _ = ensure_token(host_dir)
    admin_port = free_port()
    served = serve_host(host_dir, "--admin-port", str(admin_port))
    admin = f"http://127.0.0.1:{admin_port}"
    wait_for_admin(admin)
    host_port = served.url.rsplit(":", 1)[1]

    machines = [Machine(f"m{n}", tmp_path / f"m{n}") for n in range(1, 7)]
    for machine in machines:
        machine.run("install-key", vendor.descriptor().gvlk, "--product-config", str(descriptor))
        machine.run("set-host", f"127.0.0.1:{host_port}")

    context = browser.new_context(viewport=LAPTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)

    # Signing in: a wrong token is refused, the right one opens the overview.
    page.goto(f"{admin}/")
    assert page.url.endswith("/login")
    shot(page, "laptop-1-login")
    page.fill("#token", "vat_wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("text=the admin token is missing or wrong")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{admin}/")
    count = page.locator(f'.count[data-group="{GROUP}"]')
    assert count.inner_text() == "0"

    # The count rises as real clients ask; the fifth activates them all.
    for n, machine in enumerate(machines[:4], start=1):
        assert one_line_error(machine.run("activate", check=False)).startswith("count_insufficient")
        page.reload()
        assert count.inner_text() == str(n)
    shot(page, "laptop-2-overview-below-threshold")
    machines[4].run("activate")
    page.reload()
    assert count.inner_text() == "5"
    assert page.locator(f'.group[data-group="{GROUP}"] .pill').inner_text() == "activating"
    shot(page, "laptop-3-overview-activating")

    # Clients: search for one machine's CMID, block it after the confirmation.
    cmid = json.loads(machines[0].run("status", "--json").stdout)["cmid"]
    page.click("nav >> text=Clients")
    page.wait_for_url(f"{admin}/clients")
    assert page.locator("#total").inner_text() == "1–5 of 5"
    shot(page, "laptop-4-clients")
    page.fill("input[name=q]", cmid[:8])
    page.click("form.filters button")
    row = page.locator(f'tr[data-cmid="{cmid}"]')
    row.locator("text=Block").click()
    page.wait_for_selector("text=Block this client?")
    shot(page, "laptop-5-confirm-block")
    page.click("text=Yes, block it")
    page.wait_for_selector(f"text=blocked {cmid} (1 group)")
    assert "blocked" in row.locator("td[data-label=State]").inner_text()
    shot(page, "laptop-6-client-blocked")

    # Its next activation is refused; the event log shows it, filtered by its CMID.
    refused = one_line_error(machines[0].run("activate", check=False))
    assert refused.startswith("client_blocked"), refused
    page.click("nav >> text=Events")
    page.fill("input[name=cmid]", cmid)
    page.select_option("select[name=kind]", "activation_request")
    page.click("form.filters button")
    page.wait_for_selector("text=outcome=blocked")
    shot(page, "laptop-7-events-for-the-blocked-client")
    # DNS publishing results, as `serve --publish-dns` records them (written here beside the
    # running host, as the admin commands do: SQLite in WAL mode lets them).
    record_dns_results(host_dir / "host.db", int(time.time()))
    page.click("nav >> text=DNS")
    page.wait_for_selector("text=lab.example")
    assert page.locator("text=published").count() >= 1
    shot(page, "laptop-8-dns")
    context.close()

    # A phone-width window: the same pages, readable without sideways scrolling.
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    page = phone.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{admin}/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{admin}/")
    for name, path in [
        ("phone-1-overview", "/"),
        ("phone-2-clients", "/clients"),
        ("phone-3-events", f"/events?cmid={cmid}"),
        ("phone-4-confirm-unblock", f"/confirm?action=unblock&cmid={cmid}"),
        ("phone-5-dns", "/dns"),
    ]:
        page.goto(f"{admin}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide on a phone"
        shot(page, name)
    phone.close()
