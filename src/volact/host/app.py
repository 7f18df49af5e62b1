"""The host's ASGI app: the protocol of SPEC §6 over HTTP.

Endpoints
    ``POST /v1/activate`` — activation and renewal (:meth:`HostService.activate`).
    ``GET /v1/health`` — liveness and whether the host can activate.

Everything that is not a success is answered in the one error shape
``{"ok": false, "error": {"code", "message", "details"}}``: unknown paths (404 ``not_found``),
wrong methods (405 ``bad_request``), bodies over 16 KiB (413 ``bad_request``, refused without
reading them whole, whatever the Content-Length says), malformed JSON and every refusal of the
service. Statuses come from :data:`volact.web.STATUS`; this app and the vendor service are the
only places that know them.

``POST /v1/activate`` is nearly every request a host gets, so it is a plain ASGI endpoint
(:class:`ActivateEndpoint`) that the app calls directly, without Starlette's routing and
middleware; everything else goes through Starlette. Both apply the same rules.

Requests are rate limited per client address (a token bucket; ``rate_limit`` 0 turns it off,
as benchmarks do). Each request is logged as one structured record on the
``volact.host.access`` logger: at DEBUG when it succeeded (2xx), at INFO when it did not, so a
host at the default level logs every refusal and error but not every routine success (a JSON
line per request would cost about as much as signing the ticket). The record's fields
(method, path, status, code, client, duration) are in ``record.fields``; nothing secret (no key,
nonce or ticket) is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from volact.core.errors import BadRequest, InternalError, NotFound, VolactError
from volact.core.protocol import ACTIVATE_PATH, HEALTH_PATH, MAX_BODY_BYTES
from volact.host.service import HostService
from volact.web import (
    Answer,
    HTTPError,
    PayloadTooLarge,
    RateLimiter,
    client_address,
    encode_json,
    error_answer,
    guarded,
    json_answer,
    make_app,
    parse_json,
)
from volact.web.http1 import Request as EdgeRequest

access_log = logging.getLogger("volact.host.access")
log = logging.getLogger("volact.host")

DEFAULT_RATE_LIMIT = 100.0
"""Requests a second per client address; bursts up to twice that."""

_CODE_KEY = "volact.code"


def log_request(
    logger: logging.Logger,
    scope: Scope,
    status: int,
    started: float,
    code: str | None,
) -> None:
    """One access record: DEBUG for a success, INFO for everything else. ``scope`` is an ASGI
    scope, or any mapping with its ``method``, ``path`` and ``client``."""
    client = scope.get("client")
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "client": client[0] if client else None,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if code is not None:
        fields["code"] = code
    logger.log(logging.DEBUG if status < 400 else logging.INFO, "request", extra={"fields": fields})


class AccessLog:
    """Pure ASGI middleware: one access record per HTTP request (cheap when not logged)."""

    def __init__(self, app: ASGIApp, logger: logging.Logger = access_log) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # INFO covers DEBUG too: a logger at DEBUG is enabled for INFO.
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
            log_request(self.logger, scope, status, started, scope.get(_CODE_KEY))


class ClientGone(Exception):
    """The client disconnected before its request was read."""


def check_body_headers(headers: list[tuple[bytes, bytes]], limit: int = MAX_BODY_BYTES) -> bool:
    """Check a request's Content-Length and Content-Type (ASGI header pairs, names lower-case).

    Returns whether the request declared its length. Raises :class:`~volact.web.PayloadTooLarge`
    or :class:`BadRequest` by the rules of :func:`volact.web.read_json`: the first of repeated
    headers counts, as in Starlette.
    """
    declared: bytes | None = None
    content_type: bytes | None = None
    for name, value in headers:
        if name == b"content-length" and declared is None:
            declared = value
        elif name == b"content-type" and content_type is None:
            content_type = value
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("the Content-Length header is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", {"limit": limit})
    if content_type is not None and content_type != b"application/json":
        if content_type.split(b";")[0].strip().lower() not in (b"application/json", b""):
            raise BadRequest("the body must be application/json")
    return declared is not None


def json_body(raw: bytes) -> Any:
    """A whole request body as JSON (:func:`volact.web.parse_json`); an empty body is refused."""
    if not raw:
        raise BadRequest("the body is empty; send a JSON object")
    return parse_json(raw)


async def read_json_body(scope: Scope, receive: Receive, limit: int = MAX_BODY_BYTES) -> Any:
    """The JSON body of a request, by the rules of :func:`volact.web.read_json`, in plain ASGI.

    Never buffers more than ``limit`` bytes, whatever the Content-Length says. Raises
    :class:`~volact.web.PayloadTooLarge` or :class:`BadRequest`, and :class:`ClientGone` if the
    client went away before sending its whole body.
    """
    check_body_headers(scope["headers"], limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone  # http.disconnect: nobody is left to answer
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", {"limit": limit})
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return json_body(chunks[0] if len(chunks) == 1 else b"".join(chunks))


class ActivateEndpoint:
    """``POST /v1/activate``: rate limit, read, activate, answer, log.

    Called as a plain ASGI app, or (by the host's own HTTP edge, :mod:`volact.host.server`)
    with a request its parser has already read whole (:meth:`answer_request`). Both give the
    same answers.
    """

    def __init__(
        self,
        service: HostService,
        limiter: RateLimiter,
        monotonic: Callable[[], float],
        logger: logging.Logger = access_log,
    ) -> None:
        self.service = service
        self.limiter = limiter
        self.monotonic = monotonic
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        client = scope.get("client")
        address = client[0] if client else "unknown"
        try:
            self.limiter.check(address, self.monotonic())
            body = await read_json_body(scope, receive)
        except ClientGone:
            return
        except Exception as error:
            answer = self.refusal(error)
        else:
            answer = await self.activate(body, address)
        status, headers, payload, code = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        self.log(scope, status, started, code)

    async def answer_request(
        self, headers: list[tuple[bytes, bytes]], raw: bytes, address: str
    ) -> Answer:
        """The answer to a request whose whole body has been read, by the rules of
        :meth:`__call__` (headers as ASGI pairs, names lower-case)."""
        try:
            self.limiter.check(address, self.monotonic())
            check_body_headers(headers)
            body = json_body(raw)
        except Exception as error:
            return self.refusal(error)
        return await self.activate(body, address)

    async def activate(self, body: Any, address: str) -> Answer:
        try:
            payload = await self.service.activate_json(body, address)
        except Exception as error:
            return self.refusal(error)
        return json_answer(payload)

    @staticmethod
    def refusal(error: Exception) -> Answer:
        """The answer to an error: a VolactError as itself, anything else (a bug) logged and
        answered as ``internal``."""
        if not isinstance(error, VolactError):
            log.error("unexpected error in POST %s", ACTIVATE_PATH, exc_info=error)
            error = InternalError("an unexpected error occurred; it was logged")
        return error_answer(error)

    def log(self, scope: Scope, status: int, started: float, code: str | None) -> None:
        if self.logger.isEnabledFor(logging.DEBUG if status < 400 else logging.INFO):
            log_request(self.logger, scope, status, started, code)


class HostRoutes:
    """The host's routes on its own HTTP edge (:mod:`volact.web.http1`): the same answers as
    the ASGI app, for requests the edge has read whole.

    Paths are matched exactly (the query is ignored): ``/v1/activate/`` or ``/v1/health/`` are
    404 ``not_found`` like any other unknown path, never a redirect.
    """

    def __init__(self, activate: ActivateEndpoint, health: Callable[[str], Answer]) -> None:
        self.activate = activate
        self.health = health
        self.logger = activate.logger

    async def __call__(self, request: EdgeRequest) -> Answer:
        path = request.path
        method = request.method
        if path == _ACTIVATE:
            if method == b"POST":
                answer = await self.activate.answer_request(
                    request.headers, request.body, request.address
                )
            else:
                answer = _not_allowed(method)
        elif path == _HEALTH:
            answer = self.health(request.address) if method in _READ else _not_allowed(method)
        else:
            answer = error_answer(NotFound(f"no such endpoint: {path.decode('latin-1')}"))
        status = answer[0]
        if self.logger.isEnabledFor(logging.DEBUG if status < 400 else logging.INFO):
            scope = {
                "method": method.decode("latin-1"),
                "path": path.decode("latin-1"),
                "client": request.client,
            }
            log_request(self.logger, scope, status, request.started, answer[3])
        return answer


_ACTIVATE = ACTIVATE_PATH.encode()
_HEALTH = HEALTH_PATH.encode()
_READ = (b"GET", b"HEAD")


def _not_allowed(method: bytes) -> Answer:
    return error_answer(HTTPError(405, f"method {method.decode('latin-1')} is not allowed here"))


class HostApp:
    """The host's ASGI app: ``POST /v1/activate`` straight to its endpoint, the rest to
    Starlette (which has the same endpoint, so it also answers 405 for other methods).
    :attr:`routes` answers the same requests on the host's own HTTP edge."""

    def __init__(self, activate: ActivateEndpoint, fallback: ASGIApp, routes: HostRoutes) -> None:
        self.activate = activate
        self.fallback = fallback
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == ACTIVATE_PATH and scope["method"] == "POST":
            await self.activate(scope, receive, send)
        else:
            await self.fallback(scope, receive, send)


def create_app(
    service: HostService,
    *,
    rate_limit: float = DEFAULT_RATE_LIMIT,
    burst: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> HostApp:
    """The host's ASGI app. The caller starts and stops ``service`` (it opens the store)."""
    limiter = RateLimiter(rate_limit, burst if burst is not None else 2 * rate_limit)
    activate = ActivateEndpoint(service, limiter, monotonic)

    def health_answer(address: str) -> Answer:
        try:
            limiter.check(address, monotonic())
        except VolactError as error:
            return error_answer(error)
        return json_answer(encode_json(service.health()))

    async def health(request: Request) -> Response:
        status, headers, payload, code = health_answer(client_address(request))
        if code is not None:
            request.scope[_CODE_KEY] = code
        return Response(payload, status, {n.decode(): v.decode() for n, v in headers[:-1]})

    app = make_app(
        [
            # A plain ASGI endpoint: Starlette checks the method, then calls it; it logs itself.
            Route(ACTIVATE_PATH, activate, methods=["POST"]),
            Route(HEALTH_PATH, guarded(health), methods=["GET"]),
        ]
    )
    return HostApp(activate, AccessLog(app), HostRoutes(activate, health_answer))
