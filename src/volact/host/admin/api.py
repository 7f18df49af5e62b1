"""The admin API (``/admin/v1/…``, JSON) and ``/metrics``: the bearer token, then the views.

Only ``Authorization: Bearer TOKEN`` authenticates here, never the dashboard's cookie: a page
of another site can make a browser send cookies, not that header, so a state-changing request
(block, unblock) cannot be forged across sites. A missing or wrong token is 401 in the one error
shape. The OpenAPI document (:mod:`volact.host.admin.openapi`) needs no token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from volact.host.admin import openapi, params, views
from volact.host.admin.metrics import CONTENT_TYPE_LATEST, HostMetrics
from volact.host.admin.token import AdminToken
from volact.host.service import HostService
from volact.web import guarded

Endpoint = Callable[[Request], Awaitable[Any]]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def routes(service: HostService, token: AdminToken, metrics: HostMetrics | None) -> list[BaseRoute]:
    """The API's routes and ``/metrics`` (when metrics are on)."""

    def authorized(work: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            token.check(bearer(request))
            result = await work(request)
            return result if isinstance(result, Response) else JSONResponse(result)

        return guarded(endpoint)

    async def status(request: Request) -> Any:
        return await views.status_json(service)

    async def groups(request: Request) -> Any:
        return await views.groups_json(service)

    async def certificate(request: Request) -> Any:
        return views.certificate_json(service)

    async def clients(request: Request) -> Any:
        return await views.clients_json(service, params.client_query(request.query_params))

    async def events(request: Request) -> Any:
        return await views.events_json(service, params.event_query(request.query_params))

    async def dns(request: Request) -> Any:
        return await views.dns_json(service)

    async def block(request: Request) -> Any:
        return await views.set_blocked(service, request.path_params["cmid"], True)

    async def unblock(request: Request) -> Any:
        return await views.set_blocked(service, request.path_params["cmid"], False)

    async def document(request: Request) -> Response:
        return JSONResponse(openapi.document())

    prefix = openapi.PREFIX
    found: list[BaseRoute] = [
        Route(f"{prefix}/openapi.json", guarded(document), methods=["GET"]),
        Route(f"{prefix}/status", authorized(status), methods=["GET"]),
        Route(f"{prefix}/groups", authorized(groups), methods=["GET"]),
        Route(f"{prefix}/certificate", authorized(certificate), methods=["GET"]),
        Route(f"{prefix}/clients", authorized(clients), methods=["GET"]),
        Route(f"{prefix}/clients/{{cmid}}/block", authorized(block), methods=["POST"]),
        Route(f"{prefix}/clients/{{cmid}}/unblock", authorized(unblock), methods=["POST"]),
        Route(f"{prefix}/events", authorized(events), methods=["GET"]),
        Route(f"{prefix}/dns", authorized(dns), methods=["GET"]),
    ]
    if metrics is not None:

        async def scrape(request: Request) -> Response:
            body = await metrics.exposition(service)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        found.append(Route("/metrics", authorized(scrape), methods=["GET"]))
    return found
