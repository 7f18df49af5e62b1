"""The admin listener's ASGI app: the admin API, ``/metrics`` and the dashboard."""

from __future__ import annotations

from starlette.applications import Starlette

from volact.host.admin import api, dashboard
from volact.host.admin.metrics import HostMetrics
from volact.host.admin.token import AdminToken
from volact.host.service import HostService
from volact.web import make_app


def create_admin_app(
    service: HostService, token: AdminToken, metrics: HostMetrics | None = None
) -> Starlette:
    """The admin app of a running host; with ``metrics`` it serves ``/metrics`` too."""
    return make_app([*api.routes(service, token, metrics), *dashboard.routes(service, token)])
