"""``volact host serve``: the host service behind uvicorn, with a clean shutdown.

Start-up: read the host directory, open the store (migrations run), check the certificate, bind
the socket, then print one line on stdout once requests are accepted::

    volact host listening on http://IP:PORT

Shutdown on SIGTERM or SIGINT (Ctrl-C): stop accepting connections, let in-flight requests
finish (at most ``graceful_timeout`` seconds), stop background tasks, let the store's writer
commit everything queued, close the store, and return — the process exits with status 0. A
second SIGINT gives up waiting for in-flight requests. The logging, the socket, the signals and
the uvicorn server are the vendor service's too (:mod:`volact.web.runner`); what is the host's
own here is its HTTP protocol (the fast path for ``POST /v1/activate``), its background jobs and
its service's start and stop.

uvloop and httptools are used when installed (they come with ``uvicorn[standard]``); uvicorn's
access log is off, because the app logs each request itself as structured JSON.

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
import gc
import json
import logging
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from volact.clock import system_clock
from volact.core.errors import BadRequest, error_body
from volact.core.protocol import ACTIVATE_PATH
from volact.host.app import DEFAULT_RATE_LIMIT, ActivateEndpoint, HostApp, create_app
from volact.host.identity import HostFiles
from volact.host.service import HostService
from volact.store import open_store
from volact.web import runner

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
    background: list[BackgroundTask] = field(default_factory=list)


MALFORMED_HTTP = BadRequest(
    "the HTTP request is malformed (request line, headers or body framing) and was not read"
)


def _malformed_http_response(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn answers requests its parser rejects itself; this keeps them in the one shape."""
    payload = json.dumps(error_body(MALFORMED_HTTP), separators=(",", ":")).encode()
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    head.extend(name + b": " + value + b"\r\n" for name, value in default_headers)
    head.append(b"content-type: application/json\r\n")
    head.append(b"content-length: " + str(len(payload)).encode() + b"\r\n")
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + payload


class _CoalescingTransport:
    """A transport that sends what is written during one event-loop callback as one write.

    uvicorn writes an answer's head and its body separately, which costs two ``send()`` calls
    and two TCP segments per answer (and two reads on the client's side); on the host's hot
    path that was the largest cost after signing. Writes are held until the end of the current
    callback (``call_soon``) and then sent together; ``close()`` sends what is held first.
    Everything else goes to the real transport, whose flow control is unchanged. Answers are
    small JSON documents, so holding them for one callback costs no memory to speak of.
    """

    __slots__ = ("_pending", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._pending.append(data)

    def write_now(self, data: bytes) -> None:
        """Send ``data`` at once (after anything held): for an answer written whole."""
        self._flush()
        self._transport.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _DirectCycle:
    """A request answered without ASGI, in the place of uvicorn's request/response cycle.

    It stands in ``protocol.cycle`` while the answer is being made, so that uvicorn queues a
    pipelined request behind it, marks it on disconnect and lets it finish on shutdown. The
    attributes are the ones uvicorn's protocol reads and sets on a cycle.
    """

    __slots__ = ("body", "disconnected", "keep_alive", "response_complete", "started")

    def __init__(self, keep_alive: bool) -> None:
        self.body: list[bytes] = []
        self.keep_alive = keep_alive
        self.disconnected = False
        self.response_complete = False
        self.started = time.perf_counter()

    @property
    def message_event(self) -> _DirectCycle:
        return self  # uvicorn sets a cycle's message event when the connection is lost

    def set(self) -> None:
        pass


_DIRECT_SCOPE_PATH = ACTIVATE_PATH.encode()


def _http_protocol(activate: ActivateEndpoint | None = None) -> type[asyncio.Protocol]:
    """httptools when installed (as with uvicorn[standard]), else h11, answering parse errors in
    the one error shape instead of uvicorn's plain text, and sending each answer in one write
    (:class:`_CoalescingTransport`).

    With httptools and an ``activate`` endpoint, ``POST /v1/activate`` requests that
    :meth:`ActivateEndpoint.takes` are answered straight from the parser's callbacks: the body is
    collected as it is parsed, and one task awaits :meth:`ActivateEndpoint.answer_body` and
    writes the whole answer at once. That skips uvicorn's ASGI request/response cycle (the
    scope's use, the receive and send messages, an event, the header checks on every answer),
    a large share of the host's throughput (docs/benchmarks.md). Every other request, and any
    request that arrives while one is being answered on the same connection (pipelining), goes
    through uvicorn and ASGI as before; answers leave in the order the requests came.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import STATUS_LINE
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover - without httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

        activate = None

    # The server's default headers (the date) as bytes, remade when uvicorn replaces the list.
    default_head: list[Any] = [None, b""]

    class JSONErrorProtocol(Base):
        _direct: _DirectCycle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_CoalescingTransport(transport))  # type: ignore[arg-type]

        def send_400_response(self, msg: str) -> None:
            self.transport.write(_malformed_http_response(self.server_state.default_headers))
            self.transport.close()

        if activate is not None:

            def on_headers_complete(self) -> None:
                cycle = self.cycle
                if (
                    self.url == _DIRECT_SCOPE_PATH
                    and self.parser.get_method() == b"POST"
                    and (cycle is None or cycle.response_complete)
                    and not self.expect_100_continue
                    and self.limit_concurrency is None
                    and not self.parser.should_upgrade()
                    and activate.takes(self.headers)
                ):
                    keep_alive = (
                        self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
                    )
                    self._direct = direct = _DirectCycle(keep_alive)
                    self.cycle = direct  # type: ignore[assignment]
                    return
                self._direct = None
                super().on_headers_complete()

            def on_body(self, body: bytes) -> None:
                direct = self._direct
                if direct is None:
                    super().on_body(body)
                else:
                    direct.body.append(body)  # at most the declared length, within the limit

            def on_message_complete(self) -> None:
                direct = self._direct
                if direct is None:
                    super().on_message_complete()
                    return
                self._direct = None
                raw = direct.body[0] if len(direct.body) == 1 else b"".join(direct.body)
                direct.body = []
                task = self.loop.create_task(self._answer_directly(direct, raw))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)

            async def _answer_directly(self, cycle: _DirectCycle, raw: bytes) -> None:
                client = self.client
                address = client[0] if client else "unknown"
                try:
                    status, headers, payload, code = await activate.answer_body(raw, address)
                    transport = self.transport
                    if cycle.disconnected or transport.is_closing():
                        return  # nobody to answer; what was decided is stored regardless
                    defaults = self.server_state.default_headers
                    if default_head[0] is not defaults:
                        default_head[1] = b"".join(n + b": " + v + b"\r\n" for n, v in defaults)
                        default_head[0] = defaults
                    head = [STATUS_LINE[status], default_head[1]]
                    head.extend(name + b": " + value + b"\r\n" for name, value in headers)
                    if not cycle.keep_alive:
                        head.append(b"connection: close\r\n")
                    head.append(b"\r\n")
                    head.append(payload)
                    transport.write_now(b"".join(head))  # type: ignore[attr-defined]
                    cycle.response_complete = True
                    if not cycle.keep_alive:
                        transport.close()
                    self.on_response_complete()
                except Exception:  # pragma: no cover - answer_body answers every error itself
                    log.exception("unexpected error answering POST %s", ACTIVATE_PATH)
                    self.transport.close()
                    return
                scope = {"method": "POST", "path": ACTIVATE_PATH, "client": client}
                activate.log(scope, status, cycle.started, code)  # type: ignore[arg-type]

    return JSONErrorProtocol


def uvicorn_config(app: Any, graceful_timeout: int = GRACEFUL_TIMEOUT) -> uvicorn.Config:
    """uvicorn's settings for the host: our loop, protocol, logging and shutdown."""
    return runner.uvicorn_config(
        app,
        graceful_timeout=graceful_timeout,
        loop="auto",
        http=_http_protocol(app.activate if isinstance(app, HostApp) else None),
        ws="none",
        # Clients reach the host directly; trusting X-Forwarded-For would let a local proxy
        # (or anything on 127.0.0.1) choose the address that rate limiting keys on.
        proxy_headers=False,
    )


def _print_ready(url: str) -> None:
    runner.print_listening("host", url)


def serve(options: ServeOptions, *, on_ready: Callable[[str], None] = _print_ready) -> None:
    """Run the host until SIGTERM/SIGINT. Raises VolactError for start-up problems."""
    runner.configure_logging(options.log_level)
    files = HostFiles(options.directory)
    store = open_store(options.database_url or files.database_url)
    service = HostService.from_files(files, store, system_clock)
    port = options.port if options.port is not None else service.settings.port
    app = create_app(service, rate_limit=options.rate_limit)
    config = uvicorn_config(app, options.graceful_timeout)
    sock = runner.bind_socket(options.bind, port)

    async def main() -> None:
        # What is imported and built by now lives as long as the process: keep it out of the
        # garbage collector's full passes, each of which walked all of it (a pause every few
        # seconds under load) and found nothing to free.
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL)
        await serve_until_stopped(service, config, sock, options.background, on_ready)

    try:
        runner.run(config, main())
    finally:
        sock.close()


async def serve_until_stopped(
    service: HostService,
    config: uvicorn.Config,
    sock: socket.socket,
    background: list[BackgroundTask],
    on_ready: Callable[[str], None],
) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT (or ``request_exit``), then stop cleanly.

    Must run in the main thread (signal handlers). Starts and stops ``service``.
    """
    url = runner.listening_url(sock)
    await service.start()
    stopping = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def ready() -> None:
        log.info("listening", extra={"fields": {"url": url, "store": service.store.url}})
        for job in background:
            tasks.append(asyncio.create_task(_guarded_task(job, service, stopping)))
        on_ready(url)

    try:
        await runner.serve_until_signalled(config, sock, ready)
    finally:
        stopping.set()
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
