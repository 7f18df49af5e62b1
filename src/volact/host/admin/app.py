"""The admin listener's ASGI app: the admin API, ``/metrics`` and the dashboard."""

from __future__ import annotations

from starlette.applications import Starlette

from volact.host.admin import api, dashboard
from volact.host.admin.metrics import HostMetrics
from volact.host.admin.token import AdminToken
from volact.host.service import HostService
from volact.web import exception_handlers


def create_admin_app(
    service: HostService, token: AdminToken, metrics: HostMetrics | None = None
) -> Starlette:
    """The admin app of a running host; with ``metrics`` it serves ``/metrics`` too."""
    return Starlette(
        routes=[*api.routes(service, token, metrics), *dashboard.routes(service, token)],
        exception_handlers=exception_handlers(),
    )
