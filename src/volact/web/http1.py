"""volact's own HTTP/1.1 server edge: an asyncio protocol driving httptools' parser, with limits.

:class:`Connection` feeds what it receives to httptools' public ``HttpRequestParser`` (llhttp)
and hands each complete request to one ``handler`` coroutine (:data:`Handler`), which returns
the whole answer; it leaves in one write. No route is known here (the host's:
:class:`volact.host.app.HostRoutes`).

What it holds to, whatever a client sends:

- **Answers in order.** Requests pipelined on one connection are answered one after another, in
  the order they came (at most ``max_pipelined`` are queued; reading pauses beyond that). Bytes
  the parser refuses after good requests are answered with one 400 in the error shape *after*
  every earlier request has been answered; then the connection is closed.
- **Framing.** A ``Transfer-Encoding`` other than ``chunked`` alone → 501 in the error shape
  (the body cannot be read); a body over ``max_body_bytes`` → 413, refused without reading it
  whole; a head over ``max_head_bytes`` or ``max_headers`` → 431; then the connection is closed.
  ``Expect: 100-continue`` is answered ``100 Continue`` before the body is read.
- **Time limits** (:class:`Limits`): a request's head must arrive within ``header_timeout`` of
  its first byte (or of the connection's opening), its body within ``body_timeout`` of the end
  of the head, and a keep-alive connection may stay idle ``idle_timeout`` between requests.
  Over a limit, the connection is closed; while the host is answering, none runs. One periodic
  sweep checks every deadline, so a request costs no timer of its own.
- **Connection caps.** At most ``max_per_address`` connections from one client address and
  ``max_connections`` in all (which :func:`connection_cap` keeps below the process's file
  descriptor limit). A connection over a cap is answered at once, before anything is read — 429
  ``rate_limited`` over the per-address cap, 503 ``rate_limited`` over the global one, both with
  ``Retry-After`` — and closed; every other connection goes on being served. Refusals are
  logged as one summary line at most every ``REFUSAL_LOG_INTERVAL`` seconds.
- **A clean stop** (:meth:`Edge.shutdown`): close idle connections, let the answers being made
  finish (with ``connection: close``), up to a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

from volact.core.errors import InternalError
from volact.core.protocol import MAX_BODY_BYTES
from volact.web import Answer, HTTPError, Overloaded, PayloadTooLarge, error_answer

log = logging.getLogger("volact.web.http1")


REFUSAL_LOG_INTERVAL = 10.0
LISTEN_BACKLOG = 2048

_STATUS_LINES = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
    for status in HTTPStatus
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = b"connection: close\r\n"


class Request:
    """One complete request, as the handler gets it."""

    __slots__ = ("body", "client", "headers", "keep_alive", "method", "path", "started")

    def __init__(
        self,
        method: bytes,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client: tuple[str, int] | None,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.path = path  # the target without its query
        self.headers = headers  # names lower-case, in the order received
        self.body = body
        self.client = client
        self.keep_alive = keep_alive
        self.started = time.perf_counter()

    @property
    def address(self) -> str:
        return self.client[0] if self.client else "unknown"


# The handler answers every request; an exception it raises is logged and answered ``internal``.
Handler = Callable[[Request], Awaitable[Answer]]


MALFORMED = HTTPError(
    400, "the HTTP request is malformed (request line, headers or body framing) and was not read"
)


@dataclass(frozen=True)
class Limits:
    """What one connection, and one client address, may hold (docs/host.md, "Limits")."""

    header_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_connections: int = 8192
    max_per_address: int = 128
    max_head_bytes: int = 16384
    max_headers: int = 100
    max_body_bytes: int = MAX_BODY_BYTES
    max_pipelined: int = 16  # (the CLI checks the ranges: timeouts over 0, caps at least 1)


def connection_cap(wanted: int, open_files: int) -> int:
    """The global connection cap: ``wanted``, but below ``open_files`` (the soft RLIMIT_NOFILE)
    by a reserve for everything else the process opens (its database, files, DNS, logs): a
    quarter of the limit, at least 16 and at most 256 descriptors."""
    reserve = min(256, max(16, open_files // 4))
    return max(1, min(wanted, open_files - reserve))


class _Stop(Exception):
    """Raised in a parser callback to stop parsing (the reason is on the connection)."""


class Edge:
    """The server side of every connection: the handler, the limits, the connection counts."""

    def __init__(
        self, handler: Handler, limits: Limits | None = None, open_files: int | None = None
    ) -> None:
        """``open_files``: the process's soft open-files limit, which the global cap is kept
        below (:func:`connection_cap`)."""
        self.handler = handler
        self.limits = limits or Limits()
        self.max_connections = self.limits.max_connections
        if open_files is not None:
            self.max_connections = connection_cap(self.max_connections, open_files)
        self.connections: set[Connection] = set()
        self.per_address: dict[str, int] = {}
        self.closing = False
        self.date = b""
        self._refusals: dict[int, bytes] = {}
        self.refused = 0  # connections refused over a cap, in all
        self.timed_out = 0  # connections cut by a time limit, in all
        self._refused_logged = 0
        self._logged_at = 0.0
        self._all_closed = asyncio.Event()
        self._update_date()

    def _update_date(self) -> None:
        self.date = b"date: " + email.utils.formatdate(usegmt=True).encode() + b"\r\n"
        self._refusals = self._refusal_answers()

    def protocol(self) -> Connection:
        return Connection(self)

    # --- the sweep: dates, deadlines, refusal summaries ------------------------------------

    def tick(self) -> float:
        """Seconds between sweeps: a quarter of the shortest time limit, within 0.05–1 s."""
        limits = self.limits
        shortest = min(limits.header_timeout, limits.body_timeout, limits.idle_timeout)
        return max(0.05, min(1.0, shortest / 4))

    def sweep(self, now: float) -> None:
        """Close every connection past its deadline (``now`` is the event loop's time)."""
        self._update_date()
        expired = [c for c in self.connections if 0.0 < c.deadline <= now]
        for connection in expired:
            connection.expire()
        self.timed_out += len(expired)
        if self.refused != self._refused_logged and now - self._logged_at >= REFUSAL_LOG_INTERVAL:
            log.warning(
                "connections refused over the caps",
                extra={
                    "fields": {
                        "refused": self.refused - self._refused_logged,
                        "open": len(self.connections),
                        "max_connections": self.max_connections,
                        "max_per_address": self.limits.max_per_address,
                    }
                },
            )
            self._refused_logged = self.refused
            self._logged_at = now

    async def sweeping(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.tick()
        while True:
            await asyncio.sleep(tick)
            try:
                self.sweep(loop.time())
            except Exception:  # the sweep must go on, whatever one connection did
                log.exception("the connection sweep failed")

    # --- connections ---------------------------------------------------------------------

    def admit(self, connection: Connection, address: str) -> bytes | None:
        """Count a new connection in, or give the whole answer that refuses it."""
        count = self.per_address.get(address, 0)
        if count >= self.limits.max_per_address:
            self.refused += 1
            return self._refusals[429]
        if len(self.connections) >= self.max_connections:
            self.refused += 1
            return self._refusals[503]
        self.per_address[address] = count + 1
        self.connections.add(connection)
        return None

    def _refusal_answers(self) -> dict[int, bytes]:
        """The answers to connections over a cap, made whole once a tick (a flood of refused
        connections costs no encoding each)."""
        per_address = self.limits.max_per_address
        errors = [
            Overloaded(
                429,
                f"too many connections from one address (at most {per_address} at once); "
                "try again in 1 s",
                {"retry_after": 1, "limit": per_address},
            ),
            Overloaded(
                503,
                f"the host has its most connections open ({self.max_connections}); "
                "try again in 1 s",
                {"retry_after": 1, "limit": self.max_connections},
            ),
        ]
        return {error.status: self.encode(error_answer(error), False, False) for error in errors}

    def encode(self, answer: Answer, keep_alive: bool, head_only: bool) -> bytes:
        """An answer's bytes: status line, date, headers, ``connection: close`` unless kept
        alive, and the body (not for HEAD)."""
        status, headers, payload, _ = answer
        parts = [_STATUS_LINES[status], self.date]
        parts.extend(name + b": " + value + b"\r\n" for name, value in headers)
        if not keep_alive:
            parts.append(_CLOSE)
        parts.append(b"\r\n")
        if not head_only:
            parts.append(payload)
        return b"".join(parts)

    def release(self, connection: Connection, address: str) -> None:
        self.connections.discard(connection)
        count = self.per_address.get(address, 0) - 1
        if count > 0:
            self.per_address[address] = count
        else:
            self.per_address.pop(address, None)
        if self.closing and not self.connections:
            self._all_closed.set()

    async def serve(self, sock: socket.socket) -> asyncio.AbstractServer:
        """Start accepting on ``sock`` (bound, not yet listening)."""
        loop = asyncio.get_running_loop()
        return await loop.create_server(self.protocol, sock=sock, backlog=LISTEN_BACKLOG)

    async def shutdown(self, timeout: float, forced: asyncio.Event | None = None) -> None:
        """Close idle connections, let the answers in progress finish (at most ``timeout``
        seconds, or until ``forced`` is set), then drop what is left."""
        self.closing = True
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.connections:
            self._all_closed.clear()
            waits = [asyncio.ensure_future(self._all_closed.wait())]
            if forced is not None:
                waits.append(asyncio.ensure_future(forced.wait()))
            _, pending = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for wait in pending:
                wait.cancel()
        for connection in list(self.connections):
            connection.abort()
        workers = [c.worker for c in list(self.connections) if c.worker is not None]
        for worker in workers:
            worker.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)


class Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order, within the edge's limits."""

    # Defaults for every connection; what changes is set on the instance. A refused connection
    # sets nearly nothing (a flood of them must cost little).
    parser: httptools.HttpRequestParser | None = None  # made once admitted
    transport: asyncio.Transport | None = None
    client: tuple[str, int] | None = None
    address = "unknown"
    counted = False
    deadline = 0.0  # loop time after which the connection is cut; 0 while answering
    worker: asyncio.Task[None] | None = None
    stopped = False  # nothing more is read: answer what is queued, then close
    reading = True
    writing = True
    in_message = False
    refusal: Answer | None = None
    # The request being parsed (reset when a message begins).
    url = b""
    body_size = 0
    head_size = 0
    head_raw = 0  # bytes received while in the head (llhttp buffers a partial header)
    in_head = False
    read_done = 0  # bytes of the current read that were whole requests (about)

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.limits = edge.limits

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client = (str(peer[0]), int(peer[1]))
            self.address = self.client[0]
        edge = self.edge
        if edge.closing:
            transport.close()
            return
        refused = edge.admit(self, self.address)
        if refused is not None:
            self.stopped = True
            transport.write(refused)
            transport.close()
            return
        self.counted = True
        self.loop = asyncio.get_running_loop()
        self.queue: deque[Request | Answer] = deque()
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.parser = httptools.HttpRequestParser(self)
        self.deadline = self.loop.time() + self.limits.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.stopped = True
        self.deadline = 0.0
        if self.counted:
            self.counted = False
            self.edge.release(self, self.address)
        # A worker still answering goes on: what it decides is stored, whoever is listening.

    def data_received(self, data: bytes) -> None:
        if self.stopped or self.parser is None:
            return
        continued = self.in_head  # these bytes go on with a head begun before
        self.read_done = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # An upgrade (e.g. WebSocket) is not spoken here: answer what came, then close.
            self._stop(None)
        except httptools.HttpParserError:
            if self.refusal is not None:  # refused in a callback (raised as _Stop)
                self._stop(self.refusal)
            elif self.stopped:  # a last request (Connection: close) ended the parse
                self._stop(None)
            else:  # bytes llhttp refuses
                self._stop(error_answer(MALFORMED))
            return
        if self.in_head:  # at most this much of the head has come (llhttp holds a partial line)
            rest = len(data) if continued else len(data) - self.read_done
            self.head_raw += rest
            if self.head_raw > 2 * self.limits.max_head_bytes:
                self._stop(error_answer(self._head_too_large()))

    def eof_received(self) -> bool | None:
        # The client has sent all it will: answer what is queued, then close.
        if not self.stopped:
            self._stop(error_answer(MALFORMED) if self.in_message else None)
        return True  # keep the write side open for the answers

    def pause_writing(self) -> None:
        self.writing = False
        self._pause()

    def resume_writing(self) -> None:
        self.writing = True
        self._resume()

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.url = b""
        self.headers = []
        self.body = []
        self.body_size = 0
        self.head_size = 0
        self.head_raw = 0
        self.in_head = True
        if self.worker is None:
            self.deadline = self.loop.time() + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)
        if self.head_size > self.limits.max_head_bytes:
            self._refuse(HTTPError(414, "the request target is too long"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if (
            self.head_size > self.limits.max_head_bytes
            or len(self.headers) >= self.limits.max_headers
        ):
            self._refuse(self._head_too_large())
        self.headers.append((name.lower(), value))

    def _head_too_large(self) -> HTTPError:
        limits = self.limits
        return HTTPError(
            431,
            f"the request's head is over {limits.max_head_bytes} bytes or {limits.max_headers} "
            "headers",
        )

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.worker is None:
            self.deadline = self.loop.time() + self.limits.body_timeout
        declared = b""
        expect = False
        for name, value in self.headers:
            if name == b"transfer-encoding":
                # llhttp decodes chunked framing; any other coding would be left undone.
                codings = [c.strip().lower() for c in value.split(b",")]
                if codings != [b"chunked"]:
                    self._refuse(
                        HTTPError(
                            501,
                            "only the chunked transfer coding is understood, alone",
                            {"transfer_encoding": value.decode("latin-1")},
                        )
                    )
            elif name == b"content-length" and not declared:
                declared = value
            elif name == b"expect" and value.lower() == b"100-continue":
                expect = True
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            self._refuse(self._too_large())
        if expect and self.worker is None and self.transport is not None:
            # The body may come (llhttp checked the length). Not while earlier answers are
            # due: they go first, and the client sends its body after a while anyway.
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.limits.max_body_bytes:
            self._refuse(self._too_large())
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.read_done += self.head_size + self.body_size + 64  # the request line, roughly
        body = self.body
        parser = self.parser
        assert parser is not None  # it is what calls this
        target = self.url
        query = target.find(b"?")
        request = Request(
            parser.get_method(),
            target if query < 0 else target[:query],
            self.headers,
            body[0] if len(body) == 1 else b"".join(body),
            self.client,
            parser.should_keep_alive(),
        )
        self.body = []
        self.deadline = 0.0
        self._enqueue(request)
        if not request.keep_alive:
            self.stopped = True  # anything after a last request is not read
            raise _Stop
        if len(self.queue) >= self.limits.max_pipelined:
            self._pause()

    # --- answering -----------------------------------------------------------------------

    def _enqueue(self, item: Request | Answer) -> None:
        self.queue.append(item)
        if self.worker is None:
            self.worker = self.loop.create_task(self._work())

    async def _work(self) -> None:
        queue = self.queue
        handler = self.edge.handler
        while queue:
            transport = self.transport
            if transport is None or transport.is_closing():
                queue.clear()  # nobody to answer: what was not begun is not counted either
                break
            item = queue.popleft()
            if isinstance(item, Request):
                try:
                    answer = await handler(item)
                except Exception:
                    log.exception("unexpected error answering %s", item.path.decode("latin-1"))
                    answer = error_answer(
                        InternalError("an unexpected error occurred; it was logged")
                    )
                keep_alive = item.keep_alive and not self.edge.closing
                head_only = item.method == b"HEAD"
            else:
                answer, keep_alive, head_only = item, False, False
            last = not keep_alive or (self.stopped and not queue)
            if not transport.is_closing():
                transport.write(self.edge.encode(answer, not last, head_only))
                if last:
                    transport.close()
        self.worker = None
        if self.stopped or self.edge.closing:
            self.close()
            return
        if not self.in_message:
            self.deadline = self.loop.time() + self.limits.idle_timeout
        elif self.deadline == 0.0:  # a pipelined request began while the last was answered
            self.deadline = self.loop.time() + self.limits.header_timeout
        self._resume()

    # --- stopping ------------------------------------------------------------------------

    def _refuse(self, error: HTTPError) -> None:
        """Stop parsing: ``error`` is answered after everything queued, then the connection
        closes (its framing can no longer be trusted)."""
        self.refusal = error_answer(error)
        raise _Stop

    def _too_large(self) -> HTTPError:
        limit = self.limits.max_body_bytes
        return PayloadTooLarge(f"the body is larger than {limit} bytes", {"limit": limit})

    def _stop(self, refusal: Answer | None) -> None:
        self.stopped = True
        self.deadline = 0.0
        self._pause()
        if refusal is not None:
            self._enqueue(refusal)
        elif self.worker is None:
            self.close()

    def _pause(self) -> None:
        if self.reading and self.transport is not None and not self.transport.is_closing():
            self.reading = False
            self.transport.pause_reading()

    def _resume(self) -> None:
        if (
            not self.reading
            and self.writing
            and not self.stopped
            and len(self.queue) < self.limits.max_pipelined
            and self.transport is not None
            and not self.transport.is_closing()
        ):
            self.reading = True
            self.transport.resume_reading()

    def expire(self) -> None:
        """Past a time limit: cut the connection (nothing is owed to it)."""
        if self.worker is not None:
            return
        self.deadline = 0.0
        self.stopped = True
        self.abort()

    def close_if_idle(self) -> None:
        if self.worker is None:
            self.stopped = True
            self.close()

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size():
                transport.abort()  # a client that does not read is owed nothing more
            else:
                transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.abort()
