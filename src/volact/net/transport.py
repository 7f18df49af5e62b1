"""The client's HTTP transport: one JSON POST to a host or the vendor service.

Every failure leaves here as a :class:`~volact.core.errors.VolactError` with a stable code
(httpcore's ``map_exceptions`` idea): connection problems → ``host_unreachable``, an error body in
the one shape → the typed error it names, anything else that is not our protocol →
``host_unreachable`` too (whatever answered is not a volact host).

:class:`ASGITransportAdapter` is the shipped fake: it sends the same requests to an in-process
ASGI app (the real host app with a memory store), for tests and the simulator.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from volact.core.errors import (
    ConfigurationError,
    HostUnreachable,
    VolactError,
    error_from_code,
)

MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_TIMEOUT = 10.0


def service_url(base_url: str, path: str) -> str:
    """``path`` under a service's base URL (the vendor service's, as configured)."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"the vendor URL {base_url!r} must start with http:// or https://")
    return base_url.rstrip("/") + path


class Transport(Protocol):
    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``url``; return the success body or raise a VolactError."""
        ...


def _interpret(
    url: str, status: int, content: bytes, limit: int = MAX_RESPONSE_BYTES
) -> dict[str, Any]:
    if len(content) > limit:
        raise HostUnreachable(f"{url} sent an oversized answer", {"url": url})
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HostUnreachable(
            f"{url} answered HTTP {status} without a volact body (is it a volact host?)",
            {"url": url, "status": status},
        ) from exc
    if not isinstance(data, dict):
        raise HostUnreachable(f"{url} answered with an unexpected body", {"url": url})
    if data.get("ok") is True and 200 <= status < 300:
        return data
    error = data.get("error")
    if data.get("ok") is False and isinstance(error, dict) and isinstance(error.get("code"), str):
        message = error.get("message")
        details = error.get("details")
        raise error_from_code(
            error["code"],
            message if isinstance(message, str) else error["code"],
            details if isinstance(details, dict) else None,
        )
    raise HostUnreachable(f"{url} answered HTTP {status} with an unknown body", {"url": url})


class HTTPTransport:
    """The real transport (httpx, no proxies from the environment, bounded time and size)."""

    def __init__(
        self, timeout: float = DEFAULT_TIMEOUT, max_response_bytes: int = MAX_RESPONSE_BYTES
    ) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx  # Imported here: apps that only read their status never pay for it.

        try:
            with httpx.Client(timeout=self.timeout, trust_env=False) as client:
                with client.stream("POST", url, json=body) as response:
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_response_bytes:
                            raise HostUnreachable(f"{url} sent an oversized answer", {"url": url})
                        chunks.append(chunk)
                    return _interpret(
                        url, response.status_code, b"".join(chunks), self.max_response_bytes
                    )
        except VolactError:
            raise
        except httpx.HTTPError as exc:
            raise HostUnreachable(
                f"cannot reach {url}: {type(exc).__name__}: {exc}".rstrip(": "), {"url": url}
            ) from exc


class ASGITransportAdapter:
    """Sends requests to an in-process ASGI app (no sockets): a fake that runs real code."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """Synchronous form (runs its own event loop: do not call from inside one)."""
        return asyncio.run(self.post_json_async(url, body))

    async def post_json_async(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://volact.test") as client:
            response = await client.post(httpx.URL(url).path, json=body)
        return _interpret(url, response.status_code, response.content)


VENDOR_TIMEOUT = 30.0
MAX_VENDOR_ANSWER_BYTES = 1024 * 1024


def vendor_transport() -> HTTPTransport:
    """The real transport with the vendor service's limits (its answers carry root keys)."""
    return HTTPTransport(timeout=VENDOR_TIMEOUT, max_response_bytes=MAX_VENDOR_ANSWER_BYTES)
