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

import json
from typing import Any, Protocol

from volact import __version__
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
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
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
    """The real transport: the standard library's ``http.client``, bounded in time and size.

    One JSON POST needs no HTTP library: ``http.client`` imports in a fraction of httpx's time
    and adds nothing to an app's installer (figures: ``benchmarks/client_install.py``). No
    redirect is followed. Towards an activation host (the default) it reads no proxy settings
    from the environment: a host is inside the customer's network. Towards the vendor service
    (:func:`vendor_transport`) it does, since a host or a MAK client usually reaches the
    internet through the company's proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``; ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are OpenSSL's own).
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
        import http.client  # Imported here: apps that only read their status never pay for it.

        try:
            connection, target, extra_headers = self._connect(url)
            try:
                headers = {
                    "Accept": "application/json",
                    "User-Agent": f"volact/{__version__}",
                    **extra_headers,
                }
                payload = None
                if body is not None:
                    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
                    headers["Content-Type"] = "application/json"
                connection.request(method, target, body=payload, headers=headers)
                # Closed here: for an HTTP/1.0 answer the response owns the socket, and
                # closing the connection alone would leave it open.
                with connection.getresponse() as response:
                    content = response.read(self.max_response_bytes + 1)
                    status = response.status
                if len(content) > self.max_response_bytes:
                    raise self.answers.not_ours(url, status, "oversized")
                return interpret(url, status, content, self.max_response_bytes, self.answers)
            finally:
                connection.close()
        except VolactError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise self.answers.unreachable(url, exc) from exc

    def _connect(self, url: str) -> tuple[Any, str, dict[str, str]]:
        """An unopened connection for ``url`` (through the proxy, if one applies), the request
        target to send on it and the headers the proxy needs."""
        import http.client
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = self._proxy(parts.scheme, parts.hostname, port) if self.trust_env else None
        context = None
        if secure or (proxy is not None and proxy.scheme == "https"):
            import ssl

            context = ssl.create_default_context()
        if proxy is None:
            if secure:
                https = http.client.HTTPSConnection(
                    parts.hostname, port, timeout=self.timeout, context=context
                )
                return https, target, {}
            plain = http.client.HTTPConnection(parts.hostname, port, timeout=self.timeout)
            return plain, target, {}
        auth: dict[str, str] = {}
        if proxy.username is not None:
            import base64

            user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
            token = base64.b64encode(user.encode("utf-8")).decode("ascii")
            auth["Proxy-Authorization"] = f"Basic {token}"
        proxy_host, proxy_port = proxy.hostname or "", proxy.port
        proxy_port = proxy_port or (443 if proxy.scheme == "https" else 80)
        connection: http.client.HTTPConnection
        if secure:  # a tunnel (CONNECT) through the proxy, TLS end to end
            connection = http.client.HTTPSConnection(
                proxy_host, proxy_port, timeout=self.timeout, context=context
            )
            connection.set_tunnel(parts.hostname, port, headers=auth)
            return connection, target, {}
        if proxy.scheme == "https":
            connection = http.client.HTTPSConnection(
                proxy_host, proxy_port, timeout=self.timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(proxy_host, proxy_port, timeout=self.timeout)
        return connection, url, auth  # a plain-HTTP proxy is sent the whole URL

    @staticmethod
    def _proxy(scheme: str, host: str, port: int) -> Any:
        """The proxy the environment names for ``scheme://host:port``, or None."""
        import urllib.request
        from urllib.parse import urlsplit

        proxies = urllib.request.getproxies_environment()
        chosen = proxies.get(scheme) or proxies.get("all")
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if not chosen or bypass(f"{host}:{port}", proxies):
            return None
        if "://" not in chosen:
            chosen = "http://" + chosen
        return urlsplit(chosen)


class ASGITransportAdapter:
    """Sends requests to an in-process ASGI app (no sockets): a fake that runs real code.

    It needs httpx (its ASGI transport), which the plain install does not bring: it comes with
    the ``dev`` extra, or ``pip install httpx`` in a vendor's test environment."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """Synchronous form (runs its own event loop: do not call from inside one)."""
        import asyncio

        return asyncio.run(self.post_json_async(url, body))

    async def post_json_async(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://volact.test") as client:
            response = await client.post(httpx.URL(url).path, json=body)
        return interpret(url, response.status_code, response.content)

    def get_json(self, url: str) -> dict[str, Any]:
        """A GET (a health check), synchronous like :meth:`post_json`."""
        import asyncio

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
