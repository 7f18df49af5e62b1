"""What volact's two HTTP services (the host and the vendor service) share.

This is the only place, with the apps that use it, that knows HTTP status codes: the domain
raises :class:`~volact.core.errors.VolactError` subclasses with stable codes, and
:func:`error_response` turns them into the one error shape of SPEC §6 with a fitting status.
The one server runner (uvicorn, JSON logs, a clean stop on SIGTERM) is
:mod:`volact.web.runner`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from volact.core.errors import (
    BadRequest,
    InternalError,
    NotFound,
    RateLimited,
    VolactError,
    error_body,
)
from volact.core.protocol import MAX_BODY_BYTES

log = logging.getLogger("volact.web")

STATUS: dict[str, int] = {
    "bad_request": 400,
    "unsupported_version": 400,
    "invalid_key": 422,
    "product_unknown": 404,
    "not_found": 404,
    "product_not_hosted": 403,
    "client_blocked": 403,
    "count_insufficient": 409,
    "time_skew": 409,
    "key_exhausted": 409,
    "replayed_request": 409,
    "rate_limited": 429,
    "unauthorized": 401,
    "host_not_activated": 503,
    "storage_error": 503,
    "internal": 500,
}


class HTTPError(BadRequest):
    """A request refused for its HTTP itself (code ``bad_request``), with its own status."""

    def __init__(self, status: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.status = status


class PayloadTooLarge(HTTPError):
    """A body over the limit (answered with 413, code ``bad_request``)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(413, message, details)


class Overloaded(RateLimited):
    """A connection refused over a cap (code ``rate_limited``), with its own status."""

    def __init__(self, status: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.status = status


def status_for(error: VolactError) -> int:
    if isinstance(error, HTTPError | Overloaded):
        return error.status
    return STATUS.get(error.code, 400 if error.code != "internal" else 500)


# An answer: status, headers (lower-case names), body, and the error code (None for a success).
Answer = tuple[int, list[tuple[bytes, bytes]], bytes, str | None]

_JSON_TYPE = (b"content-type", b"application/json")


def json_answer(payload: bytes, status: int = 200) -> Answer:
    """A JSON document (already encoded) as an answer."""
    return status, [_JSON_TYPE, (b"content-length", b"%d" % len(payload))], payload, None


def error_answer(error: VolactError) -> Answer:
    """An error as an answer in the one shape, with its status (and ``Retry-After`` when the
    error says when to retry). The same bytes as :func:`error_response`."""
    payload = encode_json(error_body(error))
    headers = [_JSON_TYPE]
    if isinstance(error, RateLimited):
        headers.append((b"retry-after", str(error.details.get("retry_after", 1)).encode()))
    headers.append((b"content-length", b"%d" % len(payload)))
    return status_for(error), headers, payload, error.code


# The same bytes as Starlette's JSONResponse, with one encoder made once.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_json(document: Any) -> bytes:
    return _JSON.encode(document).encode()


def error_response(error: VolactError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=status_for(error), headers=headers)


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """Read a JSON body of at most ``limit`` bytes without ever buffering more than that.

    Raises :class:`PayloadTooLarge` or :class:`BadRequest`.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("the Content-Length header is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", {"limit": limit})
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
        raise BadRequest("the body must be application/json")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", {"limit": limit})
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise BadRequest("the body is empty; send a JSON object")
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """A request body's JSON (strict RFC 8259, UTF-8; orjson), or :class:`BadRequest`.

    Stricter than the standard library: ``NaN``, ``Infinity``, a byte-order mark and text with
    lone surrogates are refused, and so is nesting deeper than 1024 levels, and an object that
    names a member twice (:func:`has_duplicate_keys`; RFC 8259 leaves its meaning open, and two
    readers could take different ones). An integer beyond 64 bits is read as a float, so every
    field that must be an integer refuses it.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the body is not valid JSON") from exc
    if has_duplicate_keys(value, raw):
        raise BadRequest("the body names a member of an object twice")
    return value


# A JSON string token (in text that is already known to be valid JSON).
_STRING_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"')


def has_duplicate_keys(value: Any, raw: bytes) -> bool:
    """Whether the valid JSON text ``raw``, parsed as ``value``, names a member twice.

    orjson keeps the last of repeated names without saying so. In valid JSON every member has
    exactly one ``:`` outside strings, so the text has a duplicate exactly when the parsed
    objects hold fewer members than the text has colons outside strings. Without a backslash
    in the text, a string's colons are those of its parsed value, so the colons outside strings
    are the text's colons less those of every parsed key and string (a dropped duplicate only
    lowers that count): a walk over the parsed value, about a microsecond for an activation
    request. With a backslash (an escape could spell a colon), the strings are cut out of the
    text instead.
    """
    members = 0
    in_strings = value.count(":") if type(value) is str else 0
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            members += len(item)
            for key in item:
                if ":" in key:
                    in_strings += key.count(":")
            children: Any = item.values()
        elif type(item) is list:
            children = item
        else:
            continue
        for child in children:
            kind = type(child)
            if kind is str:
                if ":" in child:
                    in_strings += child.count(":")
            elif kind is dict or kind is list:
                stack.append(child)
    if b"\\" in raw:
        return _STRING_TOKEN.sub(b"", raw).count(b":") != members
    return raw.count(b":") != members + in_strings


class RateLimiter:
    """A token bucket per client address: ``rate`` requests a second, bursts up to ``burst``.

    ``rate`` 0 disables limiting. Time is passed in (a monotonic clock reading, in seconds), so
    the limiter is tested without sleeping. At most ``max_clients`` buckets are kept (least
    recently used dropped), so a flood of addresses cannot grow memory without bound.
    """

    def __init__(self, rate: float, burst: float | None = None, max_clients: int = 65536) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 2)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str, now: float) -> None:
        """Raise :class:`RateLimited` (with ``retry_after`` seconds) when over the limit."""
        if self.rate <= 0:
            return
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise RateLimited(
                f"too many requests from {client}; try again in {wait} s",
                {"retry_after": wait},
            )
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    """Wrap an endpoint so that every failure becomes the one error shape, never a traceback."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except VolactError as error:
            headers = None
            if isinstance(error, RateLimited):
                headers = {"Retry-After": str(error.details.get("retry_after", 1))}
            return error_response(error, headers)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return error_response(InternalError("an unexpected error occurred; it was logged"))

    return endpoint


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _http_exception(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(NotFound(f"no such endpoint: {request.url.path}"))
    if status == 405:
        # RFC 9110: a 405 lists the methods the resource allows.
        allowed = getattr(exc, "headers", None) or {}
        response = error_response(
            BadRequest(f"method {request.method} is not allowed here"), dict(allowed)
        )
        response.status_code = 405
        return response
    if status < 500:
        response = error_response(BadRequest(f"bad request (HTTP {status})"))
        response.status_code = status
        return response
    log.error("unexpected error in %s %s: %r", request.method, request.url.path, exc)
    return error_response(InternalError("an unexpected error occurred; it was logged"))


def make_app(routes: Sequence[BaseRoute]) -> Starlette:
    """A Starlette app of ``routes`` whose every error is in the one error shape, and where a
    path with a trailing slash is not found: never a redirect (Starlette's would be built from
    the request's ``Host`` header, a place of the client's choosing)."""
    app = Starlette(routes=list(routes), exception_handlers=exception_handlers())
    app.router.redirect_slashes = False
    return app


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Starlette exception handlers that keep unknown paths and methods in the one error shape."""
    from starlette.exceptions import HTTPException

    return {HTTPException: _http_exception, Exception: _http_exception}
