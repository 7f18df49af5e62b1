"""The OpenAPI document: served, kept in docs/, covering every admin route; and a schemathesis
run against a live host (property-based requests from the schema: no 5xx, every answer as the
schema says, every error in the one error shape)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from tests.host.helpers import body
from volact.host.admin.openapi import PREFIX, document

from .conftest import Admin, LiveAdmin

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = ROOT / "docs" / "admin-openapi.json"
SCHEMATHESIS_TIMEOUT = 600


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_the_served_document_is_the_one_in_docs(admin: Admin) -> None:
    served = (await admin.http.get(f"{PREFIX}/openapi.json")).json()
    kept = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert served == kept, "docs/admin-openapi.json is stale: run scripts/gen_docs.py"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_every_admin_route_is_in_the_document(admin: Admin) -> None:
    routes = {
        route.path
        for route in admin.app.routes
        if isinstance(route, Route) and route.path.startswith(PREFIX)
    }
    documented = set(document()["paths"]) | {f"{PREFIX}/openapi.json"}
    assert routes == documented


@pytest.mark.slow
def test_schemathesis_against_a_live_host(
    live_admin: Callable[..., LiveAdmin], tmp_path: Path
) -> None:
    live = live_admin()
    # A few known clients, so that blocking and listing have something to find.
    now = int(time.time())
    for n in range(3):
        httpx.post(f"{live.served.url}/v1/activate", json=body(n, now))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{live.url}{PREFIX}/openapi.json",
            "--header",
            f"Authorization: Bearer {live.token}",
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--workers",
            "1",
            "--seed",
            "19",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "schemathesis"),
        ],
        capture_output=True,
        text=True,
        timeout=SCHEMATHESIS_TIMEOUT,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    assert "passed" in done.stdout.lower()
