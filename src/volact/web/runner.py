"""The one server runner of volact's HTTP services (the host and the vendor service).

Both run an ASGI app under uvicorn the same way:

- **Logs** are JSON lines on stderr (:func:`configure_logging`): one object per record with
  ``time`` (UTC), ``level``, ``logger``, ``message`` and the record's extra fields, ready for
  journald or any log shipper.
- **The socket** is bound before serving (:func:`bind_socket`), so an address or port that
  cannot be used is one clear :class:`~volact.core.errors.ConfigurationError` line.
- **Once it accepts requests** the service prints one line on stdout
  (:func:`print_listening`): ``volact <name> listening on http://IP:PORT``.
- **SIGTERM and SIGINT** (Ctrl-C) stop it gracefully (:func:`serve_until_signalled`): it stops
  accepting, finishes the requests in flight (up to the graceful timeout), and returns, so the
  service can close its store and the process exits with status 0. A second SIGINT gives up
  waiting for the requests in flight.

- **Open files**: :func:`raise_open_files_limit` raises the soft ``RLIMIT_NOFILE`` to the hard
  one, so a service's connection cap can be set below a limit that is as high as allowed.

The vendor service is served by uvicorn (:func:`uvicorn_config`, :func:`serve_until_signalled`);
the host by its own HTTP edge (:mod:`volact.web.http1`), with :class:`StopSignals` and
:func:`run_main`. What differs between the services (their log lines, what they start and stop
around serving) stays with each service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Generator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

import uvicorn
import uvloop

from volact.core.errors import ConfigurationError

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# The attributes every log record has; anything else on a record came with ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)
# Extra attributes that are not fields: uvicorn's coloured copy of its message.
_IGNORED_EXTRAS = frozenset({"color_message"})


class JSONLogFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC), ``level``, ``logger``, ``message``, then the
    record's extra fields. Fields are given as ``extra={"name": value}``, or grouped as
    ``extra={"fields": {...}}`` (merged in, for names a log record reserves)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name in _STANDARD_ATTRIBUTES or name in _IGNORED_EXTRAS:
                continue
            if name == "fields" and isinstance(value, dict):
                data.update(value)
            else:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) as JSON lines, at ``level`` and above."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def bind_socket(
    address: str, port: int, *, what: str = "", hint: str = "choose another --port or --bind"
) -> socket.socket:
    """A listening-ready TCP socket on ``address``:``port`` (IPv6 when the address has a colon,
    accepting IPv4 too); :class:`ConfigurationError` when it cannot be bound. The message
    names ``what`` listens there (e.g. ``" for the admin listener"``) and the flags to change
    (``hint``)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigurationError(
            f"cannot listen on {address} port {port}{what}: {reason} ({hint})",
            {"bind": address, "port": port},
        ) from exc
    except (OverflowError, TypeError, ValueError) as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {address} port {port}{what}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


def listening_url(sock: socket.socket) -> str:
    """``http://IP:PORT`` of a bound socket (an IPv6 address in brackets)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def print_listening(name: str, url: str) -> None:
    """The one line on stdout, for scripts and people, once the service accepts requests."""
    print(f"volact {name} listening on {url}", flush=True)


def uvicorn_config(app: Any, *, graceful_timeout: int, **settings: Any) -> uvicorn.Config:
    """uvicorn's settings that every volact service shares, and ``settings`` of its own.

    No access log and no logging set-up of uvicorn's (the apps log as JSON themselves), no
    lifespan events, no ``Server`` header.
    """
    return uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=graceful_timeout,
        **settings,
    )


class SignalStoppedServer(uvicorn.Server):
    """uvicorn's server, stopped by the handlers :func:`serve_until_signalled` installs on the
    event loop (:meth:`request_exit`), and calling ``on_ready`` once it accepts requests.

    uvicorn's own signal handling re-raises the signal after shutdown, which would end the
    process before the service has closed its store; it is turned off.
    """

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready
        self.stopped_by: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self._on_ready()

    def request_exit(self, sig: int) -> None:
        """Stop gracefully; a second SIGINT stops waiting for the requests in flight."""
        if self.stopped_by is None:
            self.stopped_by = sig
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


async def serve_until_signalled(
    config: uvicorn.Config, sock: socket.socket, on_ready: Callable[[], None]
) -> str | None:
    """Serve ``config``'s app on ``sock`` until SIGTERM or SIGINT, then stop gracefully.

    Returns the name of the signal that stopped it (``"SIGTERM"``), or None. Must run in the
    main thread (signal handlers).
    """
    server = SignalStoppedServer(config, on_ready)
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, server.request_exit, sig)
    try:
        await server.serve(sockets=[sock])
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    return signal.Signals(server.stopped_by).name if server.stopped_by is not None else None


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard one (as far as the kernel allows);
    return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard
        if hard == resource.RLIM_INFINITY:
            with contextlib.suppress(OSError, ValueError):
                wanted = int(Path("/proc/sys/fs/nr_open").read_text())
            if wanted == resource.RLIM_INFINITY:
                wanted = 1 << 20
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft


class StopSignals:
    """SIGTERM and SIGINT on the running event loop, as events (a ``with`` block installs the
    handlers and removes them). :attr:`stopping` is set by the first; :attr:`forced` by a
    second SIGINT (stop waiting for requests in flight). Must be used in the main thread."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.forced = asyncio.Event()
        self.stopped_by: int | None = None

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.received, sig)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)

    def received(self, sig: int) -> None:
        if self.stopped_by is None:
            self.stopped_by = sig
        if self.stopping.is_set() and sig == signal.SIGINT:
            self.forced.set()
        self.stopping.set()


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop's event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def run(config: uvicorn.Config, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the event loop uvicorn chooses (uvloop when installed)."""
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        return runner.run(main)
