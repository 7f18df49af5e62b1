"""The client's HTTP transport: one JSON POST to a host or the vendor service.

Every failure leaves here as a :class:`~volact.core.errors.VolactError` with a stable code
(httpcore's ``map_exceptions`` idea): connection problems → ``host_unreachable``, an error body in
the one shape → the typed error it names, anything else that is not our protocol →
``host_unreachable`` too from a host (whatever answered is not a volact host), ``bad_request``
from the vendor service (the vendor URL is wrong).

:class:`ASGITransportAdapter` is the shipped fake: it sends the same requests to an in-process
ASGI app (the real host app with a memory store), for tests and the simulator.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from volact.core.errors import (
    BadRequest,
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


class HostAnswers:
    """How the answers of an activation host read: whatever is not our protocol is
    ``host_unreachable`` (whatever answered is not a volact host)."""

    def unreachable(self, url: str, exc: Exception) -> VolactError:
        return HostUnreachable(
            f"cannot reach {url}: {type(exc).__name__}: {exc}".rstrip(": "), {"url": url}
        )

    def not_ours(self, url: str, status: int, what: str) -> VolactError:
        texts = {
            "oversized": f"{url} sent an oversized answer",
            "not_json": f"{url} answered HTTP {status} without a volact body "
            "(is it a volact host?)",
            "not_object": f"{url} answered with an unexpected body",
            "unknown": f"{url} answered HTTP {status} with an unknown body",
        }
        details: dict[str, Any] = {"url": url}
        if what == "not_json":
            details["status"] = status
        return HostUnreachable(texts[what], details)


class VendorAnswers(HostAnswers):
    """How the vendor service's answers read: an answer that is not the service's means the
    vendor URL is wrong (``bad_request``), as the vendor calls always said."""

    def unreachable(self, url: str, exc: Exception) -> VolactError:
        return HostUnreachable(
            f"cannot reach the vendor service at {url}: {exc or type(exc).__name__}", {"url": url}
        )

    def not_ours(self, url: str, status: int, what: str) -> VolactError:
        if what == "oversized":
            return BadRequest(f"the vendor service at {url} sent an oversized answer")
        if what == "unknown":
            return BadRequest(f"{url} answered HTTP {status} with an unknown shape")
        return BadRequest(
            f"{url} answered HTTP {status} without a volact answer; is the vendor URL right?",
            {"url": url, "status": status},
        )


HOST_ANSWERS = HostAnswers()


def interpret(
    url: str,
    status: int,
    content: bytes,
    limit: int = MAX_RESPONSE_BYTES,
    answers: HostAnswers = HOST_ANSWERS,
) -> dict[str, Any]:
    """The success body of an answer, or the error it carries raised as typed."""
    if len(content) > limit:
        raise answers.not_ours(url, status, "oversized")
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise answers.not_ours(url, status, "not_json") from exc
    if not isinstance(data, dict):
        raise answers.not_ours(url, status, "not_object")
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
    raise answers.not_ours(url, status, "unknown")


class HTTPTransport:
    """The real transport (httpx, bounded time and size).

    Towards an activation host (the default) it reads no proxy or CA settings from the
    environment: a host is inside the customer's network. Towards the vendor service
    (:func:`vendor_transport`) it does, since a host or a MAK client usually reaches the
    internet through the company's proxy (``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``).
    """

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        *,
        trust_env: bool = False,
        answers: HostAnswers = HOST_ANSWERS,
    ) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.trust_env = trust_env
        self.answers = answers

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._exchange("POST", url, body)

    def get_json(self, url: str) -> dict[str, Any]:
        """GET ``url`` (a health check, which changes nothing); the same rules as a POST."""
        return self._exchange("GET", url, None)

    def _exchange(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        import httpx  # Imported here: apps that only read their status never pay for it.

        try:
            with httpx.Client(timeout=self.timeout, trust_env=self.trust_env) as client:
                with client.stream(method, url, json=body) as response:
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_response_bytes:
                            raise self.answers.not_ours(url, response.status_code, "oversized")
                        chunks.append(chunk)
                    return interpret(
                        url,
                        response.status_code,
                        b"".join(chunks),
                        self.max_response_bytes,
                        self.answers,
                    )
        except VolactError:
            raise
        except httpx.HTTPError as exc:
            raise self.answers.unreachable(url, exc) from exc


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
        return interpret(url, response.status_code, response.content)

    def get_json(self, url: str) -> dict[str, Any]:
        """A GET (a health check), synchronous like :meth:`post_json`."""
        return asyncio.run(self.get_json_async(url))

    async def get_json_async(self, url: str) -> dict[str, Any]:
        import httpx

        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://volact.test") as client:
            response = await client.get(httpx.URL(url).path)
        return interpret(url, response.status_code, response.content)


VENDOR_TIMEOUT = 30.0
MAX_VENDOR_ANSWER_BYTES = 1024 * 1024


def vendor_transport() -> HTTPTransport:
    """The real transport towards the vendor service: its limits (its answers carry root keys),
    its wording, and the environment's proxy and CA settings."""
    return HTTPTransport(
        timeout=VENDOR_TIMEOUT,
        max_response_bytes=MAX_VENDOR_ANSWER_BYTES,
        trust_env=True,
        answers=VendorAnswers(),
    )
