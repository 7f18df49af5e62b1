"""The admin listener beside ``volact host serve``'s activation port.

When the host directory has an admin token (``volact host init`` makes it; a host set up before
gets one from ``volact host admin-token``), :func:`admin_job` reads it and binds the admin
address before the host starts (127.0.0.1 by default, port 7690; ``--admin-bind`` exposes it),
so a port in use is one clear error at start. Its job, a background job of the host
(:attr:`ServeOptions.background <volact.host.server.ServeOptions>`), runs once the host listens:
it turns the metrics on (the service's request observer and, for SQLite and PostgreSQL, the
store's commit observer), serves the admin app with uvicorn's public ``Config``/``Server`` API
in the same event loop, and stops when the host stops. The activation port never routes to it:
the two are separate sockets and separate apps.

uvicorn's ``Server.serve`` would install signal handlers of its own, over the host's; the job
uses the runner's server, which leaves signals to the host, and stops it when the host stops.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from volact.core.errors import ConfigurationError
from volact.host.admin.app import create_admin_app
from volact.host.admin.metrics import HostMetrics
from volact.host.admin.token import AdminToken, token_path
from volact.host.service import HostService
from volact.web import runner

log = logging.getLogger("volact.host.admin")

DEFAULT_ADMIN_BIND = "127.0.0.1"
DEFAULT_ADMIN_PORT = 7690
ADMIN_GRACEFUL_TIMEOUT = 5
ADMIN_BACKLOG = 128
HINT = "choose another --admin-port or --admin-bind, or start it without one: --no-admin"
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


@dataclass
class AdminOptions:
    directory: Path
    bind: str = DEFAULT_ADMIN_BIND
    port: int = DEFAULT_ADMIN_PORT  # 0 picks a free port
    metrics: bool = True


Job = Callable[[HostService, asyncio.Event], Awaitable[None]]


NO_TOKEN = (
    "no admin token in the host directory, so no admin listener (dashboard, admin API, "
    "/metrics); `volact host admin-token` makes one"
)


async def no_token_notice(service: HostService, stopping: asyncio.Event) -> None:
    """The background job in the admin listener's place: one warning in the host's log."""
    log.warning(NO_TOKEN)


def has_token(options: AdminOptions) -> bool:
    """Whether the host directory has an admin token (the listener starts only then)."""
    return token_path(options.directory).exists()


def print_ready(url: str) -> None:
    runner.print_listening("host admin", url)


def enable_metrics(service: HostService) -> HostMetrics:
    """Make the metrics of ``service`` and start recording them."""
    metrics = HostMetrics()
    service.observer = metrics
    observe_commits = getattr(service.store, "observe_commits", None)
    if observe_commits is not None:
        observe_commits(metrics.observe_commit)
    return metrics


def listen(options: AdminOptions) -> socket.socket:
    """The admin socket, bound and listening before the host starts.

    Listening at once (not when the job starts) matters: the activation socket is bound after
    this one, and a bound socket that is not listening yet does not keep another (with
    SO_REUSEADDR) off its port. Listening here, a clash with the activation port is the
    activation bind's one-line error, and the admin server can never fail to listen once the
    host serves; connections that come before the job starts wait in the backlog.
    """
    sock = runner.bind_socket(options.bind, options.port, what=" for the admin listener", hint=HINT)
    try:
        sock.listen(ADMIN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {options.bind} port {options.port} for the admin listener: "
            f"{exc.strerror or exc} ({HINT})",
            {"bind": options.bind, "port": options.port},
        ) from exc
    return sock


def check_ports(options: AdminOptions, bind: str, port: int) -> None:
    """ConfigurationError when the admin listener would share the activation port
    (``bind``:``port``): the same port on the same address, or on a wildcard address that
    covers the other."""
    if options.port == 0 or options.port != port:
        return
    if options.bind == bind or {options.bind, bind} & WILDCARDS:
        raise ConfigurationError(
            f"the admin listener cannot share the activation port {port}; give --admin-port "
            f"another port (the default is {DEFAULT_ADMIN_PORT})",
            {"port": port},
        )


def admin_job(options: AdminOptions, on_ready: Callable[[str], None]) -> Job:
    """The background job that serves the admin listener (``on_ready(url)`` once it listens).

    The token is read and the socket bound and listening here (:func:`listen`), before the
    host starts, so a missing token or an admin port in use is one clear error at start and
    nothing is served.
    """
    token = AdminToken(options.directory)
    token.current()
    sock = listen(options)
    url = runner.listening_url(sock)

    async def job(service: HostService, stopping: asyncio.Event) -> None:
        metrics = enable_metrics(service) if options.metrics else None
        app = create_admin_app(service, token, metrics)
        config = runner.uvicorn_config(app, graceful_timeout=ADMIN_GRACEFUL_TIMEOUT, ws="none")

        def ready() -> None:
            log.info("admin listening", extra={"fields": {"url": url}})
            on_ready(url)

        # The host's signal handlers stop the host, which sets `stopping`; this server
        # installs none of its own (SignalStoppedServer leaves signals alone).
        server = runner.SignalStoppedServer(config, ready)
        try:
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            stopped = asyncio.create_task(stopping.wait())
            await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            stopped.cancel()
            await serving
        finally:
            sock.close()
            service.observer = None

    return job
