"""The vendor service: online host certification and MAK activation (SPEC §6).

Endpoints (JSON over HTTP/1.1; default port 7689; errors in the one shape of SPEC §6):

``POST /v1/host-activations``
    Body: a host activation request file (``volact-host-activation-request``). Answer:
    ``200`` with the host activation response file and ``"ok": true``.
``POST /v1/mak-activations``
    Body: SPEC §6's activation request with a MAK as ``key``. Answer: ``200 {"ok": true,
    "ticket": …, "vendor_id": …, "machines": n, "limit": m}``.
``POST /v1/host-renewals``
    Body: a host renewal request file (``volact-host-renewal-request``, signed with the host's
    current key). Answer: the host activation response file with the renewed certificate.
``GET /v1/revocations?host_key=SERIAL``
    (or ``POST {"v": 2, "host_key": SERIAL}``) The newest revocation list of that host key (one
    per host key: one customer's certificates only), as its file (``volact-revocation-list``)
    with ``"ok": true``; hosts fetch their own key's list on a schedule (issue 20).
``GET /v1/health``
    ``{"ok": true, "service": "volact-vendor", "vendor_id": …, "root_key_id": …, "protocol": 1}``.

Bodies over 16 KiB are refused without being read whole (:func:`volact.web.read_json`), each
client address is rate limited, and every request is logged as one structured line (the logger
``volact.vendor``; keys appear only as serials). :func:`serve` runs the service under the one
server runner (:mod:`volact.web.runner`) it shares with the host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from volact import web
from volact.authority.operations import VIA_ONLINE, Vendor
from volact.core import host_renewal, offline, revocation
from volact.core.errors import VolactError
from volact.core.keys import parse_key
from volact.core.protocol import (
    HEALTH_PATH,
    HOST_ACTIVATIONS_PATH,
    HOST_RENEWALS_PATH,
    MAK_ACTIVATIONS_PATH,
    PROTOCOL_VERSION,
    REVOCATIONS_PATH,
    parse_activation_request,
)
from volact.web import runner

log = logging.getLogger("volact.vendor")

DEFAULT_PORT = 7689
DEFAULT_RATE = 5.0
DEFAULT_BURST = 20.0
GRACEFUL_TIMEOUT = 10

Parsed = TypeVar("Parsed")
Answer = TypeVar("Answer")


def _serial(key_text: str) -> str | None:
    try:
        return parse_key(key_text).serial
    except VolactError:
        return None


def create_app(
    vendor: Vendor,
    *,
    rate_limiter: web.RateLimiter | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The ASGI app of the vendor service around an open :class:`Vendor`."""
    limiter = (
        rate_limiter if rate_limiter is not None else web.RateLimiter(DEFAULT_RATE, DEFAULT_BURST)
    )

    def outcome(event: str, address: str, **fields: Any) -> None:
        log.info(event, extra={"event": event, "address": address, **fields})

    async def health(request: Request) -> Response:
        def read() -> dict[str, Any]:
            record, _ = vendor.active_root_key()
            return {
                "ok": True,
                "service": "volact-vendor",
                "vendor_id": vendor.vendor_id,
                "root_key_id": record.key_id,
                "protocol": PROTOCOL_VERSION,
            }

        return JSONResponse(await run_in_threadpool(read))

    async def answer(
        request: Request,
        parse: Callable[[Any], Parsed],
        act: Callable[..., Answer],
        refused: str,
    ) -> tuple[str, Parsed, Answer]:
        """The one way a POST is answered: rate limit the caller, read the JSON body, parse it
        and run ``act(parsed, via=online, address=…)`` in a worker thread. A refusal is logged
        as the event ``refused`` and re-raised (the error answer is ``web``'s)."""
        address = web.client_address(request)
        limiter.check(address, monotonic())
        body = await web.read_json(request)
        try:
            parsed = parse(body)
            answered = await run_in_threadpool(act, parsed, via=VIA_ONLINE, address=address)
        except VolactError as error:
            outcome(refused, address, code=error.code, reason=error.message)
            raise
        return address, parsed, answered

    async def host_activations(request: Request) -> Response:
        address, parsed, response = await answer(
            request, offline.read_host_request, vendor.certify_host, "host_certification_refused"
        )
        outcome(
            "host_certified",
            address,
            host_id=parsed.host_id,
            serial=parsed.key_serial,
            request_id=parsed.request_id,
        )
        return JSONResponse({"ok": True, **response.to_json()})

    async def mak_activations(request: Request) -> Response:
        address, parsed, activation = await answer(
            request, parse_activation_request, vendor.activate_mak, "mak_activation_refused"
        )
        outcome(
            "mak_activated",
            address,
            product=parsed.product,
            cmid=parsed.cmid,
            serial=_serial(parsed.key),
            machines=activation.machines,
            limit=activation.limit,
            new_machine=activation.new_machine,
        )
        return JSONResponse(
            {
                "ok": True,
                "ticket": activation.ticket,
                "vendor_id": vendor.vendor_id,
                "machines": activation.machines,
                "limit": activation.limit,
            }
        )

    async def host_renewals(request: Request) -> Response:
        address, _, response = await answer(
            request, host_renewal.parse_renewal_file, vendor.renew_host, "host_renewal_refused"
        )
        outcome("host_renewed", address, host_id=response.host_id, request_id=response.request_id)
        return JSONResponse({"ok": True, **response.to_json()})

    async def revocations(request: Request) -> Response:
        limiter.check(web.client_address(request), monotonic())
        asked = (
            {"host_key": request.query_params.get("host_key")}
            if request.method == "GET"
            else await web.read_json(request)
        )
        serial = revocation.host_key_of_fetch(asked)
        newest = await run_in_threadpool(vendor.revocation_list, serial)
        return JSONResponse(
            {
                "ok": True,
                "format": revocation.REVOCATION_FILE_FORMAT,
                "v": revocation.FILE_VERSION,
                "token": newest.token,
            }
        )

    routes = [
        Route(HEALTH_PATH, web.guarded(health), methods=["GET"]),
        Route(REVOCATIONS_PATH, web.guarded(revocations), methods=["GET", "POST"]),
        Route(HOST_RENEWALS_PATH, web.guarded(host_renewals), methods=["POST"]),
        Route(HOST_ACTIVATIONS_PATH, web.guarded(host_activations), methods=["POST"]),
        Route(MAK_ACTIVATIONS_PATH, web.guarded(mak_activations), methods=["POST"]),
    ]
    return web.make_app(routes)


def serve(
    vendor: Vendor,
    *,
    bind: str,
    port: int,
    rate_limiter: web.RateLimiter | None = None,
    graceful_timeout: int = GRACEFUL_TIMEOUT,
) -> str | None:
    """Serve ``vendor`` on ``bind``:``port`` until SIGTERM or SIGINT; returns the signal's name.

    Prints ``volact vendor listening on http://IP:PORT`` once it accepts requests. Configure the
    logging first (:func:`volact.web.runner.configure_logging`), so that a port that cannot be
    listened on is already one plain line.
    """
    vendor.active_root_key()  # Fail now, not on the first request, if the key file is missing.
    app = create_app(vendor, rate_limiter=rate_limiter)
    sock = runner.bind_socket(bind, port)
    address, bound_port = sock.getsockname()[:2]
    url = runner.listening_url(sock)

    def ready() -> None:
        runner.print_listening("vendor", url)
        log.info(
            f"vendor service listening on {url}",
            extra={"event": "listening", "bind": address, "port": bound_port},
        )

    config = runner.uvicorn_config(app, graceful_timeout=graceful_timeout)
    try:
        stopped_by = runner.run(config, runner.serve_until_signalled(config, sock, ready))
    finally:
        sock.close()
    log.info("vendor service stopped", extra={"event": "stopped", "signal": stopped_by})
    return stopped_by
