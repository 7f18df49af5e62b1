"""Fixtures for the admin listener: the admin app in-process, and a real `volact host serve`
with its admin listener on a port of the test's choosing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from tests.host.conftest import ServedHost
from tests.host.helpers import CertifiedHost
from tests.ports import free_port
from volact.host.admin.app import create_admin_app
from volact.host.admin.listener import enable_metrics
from volact.host.admin.metrics import HostMetrics
from volact.host.admin.token import AdminToken, ensure_token
from volact.host.app import create_app
from volact.host.service import HostService

READY_TIMEOUT = 30.0


@dataclass
class Admin:
    """The admin app of the in-process service, and an activation client beside it."""

    http: httpx.AsyncClient  # the admin app, no token sent
    hosts: httpx.AsyncClient  # the activation app
    token: str
    directory: Path
    metrics: HostMetrics
    app: Starlette

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def admin(host: CertifiedHost, service: HostService) -> AsyncIterator[Admin]:
    token, _ = ensure_token(host.directory)
    metrics = enable_metrics(service)
    app = create_admin_app(service, AdminToken(host.directory), metrics)
    admin_transport = httpx.ASGITransport(app=app)
    host_transport = httpx.ASGITransport(app=create_app(service, rate_limit=0))
    async with (
        httpx.AsyncClient(transport=admin_transport, base_url="http://admin.test") as http,
        httpx.AsyncClient(transport=host_transport, base_url="http://host.test") as hosts,
    ):
        yield Admin(http, hosts, token, host.directory, metrics, app)


@dataclass
class LiveAdmin:
    served: ServedHost
    url: str  # the admin listener
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def wait_for_admin(url: str) -> None:
    """Poll until the admin listener answers (it starts just after the activation port)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            httpx.get(f"{url}/admin/v1/openapi.json", timeout=2.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def live_admin(
    host: CertifiedHost, serve_host: Callable[..., ServedHost]
) -> Callable[..., LiveAdmin]:
    """Start `volact host serve` with its admin listener on a free port."""

    def start(*extra: str) -> LiveAdmin:
        token, _ = ensure_token(host.directory)
        port = free_port()
        served = serve_host(host.directory, "--admin-port", str(port), *extra)
        url = f"http://127.0.0.1:{port}"
        wait_for_admin(url)
        return LiveAdmin(served, url, token)

    return start
