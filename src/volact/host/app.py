"""The host's ASGI app (Starlette): the protocol of SPEC §6 over HTTP.

Endpoints
    ``POST /v1/activate`` — activation and renewal (:meth:`HostService.activate`).
    ``GET /v1/health`` — liveness and whether the host can activate.

Everything that is not a success is answered in the one error shape
``{"ok": false, "error": {"code", "message", "details"}}``: unknown paths (404 ``not_found``),
wrong methods (405 ``bad_request``), bodies over 16 KiB (413 ``bad_request``, refused without
reading them whole, whatever the Content-Length says), malformed JSON and every refusal of the
service. Statuses come from :data:`volact.web.STATUS`; this app and the vendor service are the
only places that know them.

Requests are rate limited per client address (a token bucket; ``rate_limit`` 0 turns it off,
as benchmarks do). Each request is logged as one structured record at INFO on the
``volact.host.access`` logger: its fields (method, path, status, code, client, duration) are in
``record.fields``; nothing secret (no key, nonce or ticket) is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from volact.core.errors import VolactError
from volact.host.service import HostService
from volact.web import RateLimiter, client_address, exception_handlers, guarded, read_json

access_log = logging.getLogger("volact.host.access")

DEFAULT_RATE_LIMIT = 100.0
"""Requests a second per client address; bursts up to twice that."""

_CODE_KEY = "volact.code"


class AccessLog:
    """Pure ASGI middleware: one log record per HTTP request (cheap when INFO is off)."""

    def __init__(self, app: ASGIApp, logger: logging.Logger = access_log) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            client = scope.get("client")
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "client": client[0] if client else None,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            }
            code = scope.get(_CODE_KEY)
            if code is not None:
                fields["code"] = code
            self.logger.info("request", extra={"fields": fields})


def create_app(
    service: HostService,
    *,
    rate_limit: float = DEFAULT_RATE_LIMIT,
    burst: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> ASGIApp:
    """The host's ASGI app. The caller starts and stops ``service`` (it opens the store)."""
    limiter = RateLimiter(rate_limit, burst if burst is not None else 2 * rate_limit)

    async def activate(request: Request) -> Response:
        try:
            address = client_address(request)
            limiter.check(address, monotonic())
            body = await read_json(request)
            return JSONResponse(await service.activate(body, address))
        except VolactError as error:
            request.scope[_CODE_KEY] = error.code
            raise

    async def health(request: Request) -> Response:
        try:
            limiter.check(client_address(request), monotonic())
        except VolactError as error:
            request.scope[_CODE_KEY] = error.code
            raise
        return JSONResponse(service.health())

    app = Starlette(
        routes=[
            Route("/v1/activate", guarded(activate), methods=["POST"]),
            Route("/v1/health", guarded(health), methods=["GET"]),
        ],
        exception_handlers=exception_handlers(),
    )
    return AccessLog(app)
