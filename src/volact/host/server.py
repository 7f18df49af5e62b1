"""``volact host serve``: the host service on its own HTTP/1.1 edge, with a clean shutdown.

Start-up: read the host directory, open the store (migrations run), check the certificate, bind
the socket, raise the soft open-files limit to the hard one, then print one line on stdout once
requests are accepted::

    volact host listening on http://IP:PORT

Requests are read and answered by :mod:`volact.web.http1` (httptools' parser, driven by an
asyncio protocol of volact's own, on uvloop), with the host's routes
(:class:`~volact.host.app.HostRoutes`) and its limits against hostile connections
(:class:`~volact.web.http1.Limits`: header, body and idle timeouts, connections per address
and in all; docs/host.md, "Limits"). The global connection cap is kept below the open-files
limit (:func:`volact.web.http1.connection_cap`), so the descriptors the store, the certificate
watcher and the background jobs need are never taken by connections.

Shutdown on SIGTERM or SIGINT (Ctrl-C): stop accepting connections, close idle ones, let the
requests being answered finish (at most ``graceful_timeout`` seconds), stop background tasks,
let the store's writer commit everything queued, close the store, and return — the process
exits with status 0. A second SIGINT gives up waiting for the requests being answered. The
logging, the socket and the signals are the vendor service's too (:mod:`volact.web.runner`).

To add a long-running job to the host (for example publishing its DNS record every 24 hours),
put a coroutine function into :attr:`ServeOptions.background`. It is started once the host is
listening, with the running :class:`~volact.host.service.HostService` and an
:class:`asyncio.Event` that is set when the host stops; it should then return (within
``BACKGROUND_STOP_TIMEOUT`` seconds, or it is cancelled) before the store is closed. A job that
raises is logged and never stops the host. Events go to the store with
:meth:`HostService.note_event` (synchronous callers) or ``await service.store.record_event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from volact.clock import system_clock
from volact.host.app import DEFAULT_RATE_LIMIT, create_app
from volact.host.identity import HostFiles
from volact.host.service import HostService
from volact.store import open_store
from volact.web import runner
from volact.web.http1 import Edge, Limits

log = logging.getLogger("volact.host")

DEFAULT_BIND = "0.0.0.0"
GRACEFUL_TIMEOUT = 30
BACKGROUND_STOP_TIMEOUT = 10.0
# How long the thread holding Python's interpreter lock may keep it when another thread asks
# for it (Python's default is 5 ms). The SQLite writer thread takes the lock back after every
# call into SQLite; with the event loop busy it could wait 5 ms each time. 1 ms lowers the
# open-loop p99 and leaves throughput as it is (measurements: docs/benchmarks.md).
SWITCH_INTERVAL = 0.001

# A long-running job: (the running service, an event set when the host stops).
BackgroundTask = Callable[[HostService, asyncio.Event], Awaitable[None]]


@dataclass
class ServeOptions:
    """Everything ``volact host serve`` takes; the CLI fills it from its flags."""

    directory: Path
    database_url: str | None = None  # default: the host directory's host.db
    bind: str = DEFAULT_BIND
    port: int | None = None  # default: host.json's port (7688); 0 picks a free port
    rate_limit: float = DEFAULT_RATE_LIMIT
    log_level: str = "info"
    graceful_timeout: int = GRACEFUL_TIMEOUT
    limits: Limits = field(default_factory=Limits)
    background: list[BackgroundTask] = field(default_factory=list)


def _print_ready(url: str) -> None:
    runner.print_listening("host", url)


def serve(options: ServeOptions, *, on_ready: Callable[[str], None] = _print_ready) -> None:
    """Run the host until SIGTERM/SIGINT. Raises VolactError for start-up problems."""
    runner.configure_logging(options.log_level)
    open_files = runner.raise_open_files_limit()
    files = HostFiles(options.directory)
    store = open_store(options.database_url or files.database_url)
    service = HostService.from_files(files, store, system_clock)
    port = options.port if options.port is not None else service.settings.port
    app = create_app(service, rate_limit=options.rate_limit)
    sock = runner.bind_socket(options.bind, port)

    async def main() -> None:
        # What is imported and built by now lives as long as the process: keep it out of the
        # garbage collector's full passes, each of which walked all of it (a pause every few
        # seconds under load) and found nothing to free.
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL)
        edge = Edge(app.routes, options.limits, open_files)
        await serve_until_stopped(
            service, edge, sock, options.background, on_ready, options.graceful_timeout
        )

    try:
        runner.run_main(main())
    finally:
        sock.close()


async def serve_until_stopped(
    service: HostService,
    edge: Edge,
    sock: socket.socket,
    background: list[BackgroundTask],
    on_ready: Callable[[str], None],
    graceful_timeout: float = GRACEFUL_TIMEOUT,
) -> None:
    """Serve ``edge`` on ``sock`` until SIGTERM/SIGINT, then stop cleanly.

    Must run in the main thread (signal handlers). Starts and stops ``service``.
    """
    url = runner.listening_url(sock)
    await service.start()
    stopping = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    sweeping = asyncio.create_task(edge.sweeping(), name="volact-http-sweep")
    try:
        with runner.StopSignals() as signals:
            server = await edge.serve(sock)
            log.info(
                "listening",
                extra={
                    "fields": {
                        "url": url,
                        "store": service.store.url,
                        "max_connections": edge.max_connections,
                        "max_per_address": edge.limits.max_per_address,
                    }
                },
            )
            for job in background:
                tasks.append(asyncio.create_task(_guarded_task(job, service, stopping)))
            on_ready(url)
            await signals.stopping.wait()
            server.close()  # no new connections
            await edge.shutdown(graceful_timeout, signals.forced)
            await server.wait_closed()
    finally:
        stopping.set()
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=BACKGROUND_STOP_TIMEOUT)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await service.stop()
        log.info("stopped", extra={"fields": {"url": url}})


async def _guarded_task(job: BackgroundTask, service: HostService, stopping: asyncio.Event) -> None:
    """A background job that fails is logged; it never stops the host."""
    try:
        await job(service, stopping)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s failed", getattr(job, "__name__", job))
