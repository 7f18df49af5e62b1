"""Running an ASGI app under uvicorn, with structured logs and a clean stop on SIGTERM.

Once it accepts requests, one line goes to stdout: ``volact <name> listening on http://IP:PORT``.
Logs are JSON lines on stderr (one object per line: ``time`` (UTC), ``level``, ``logger``,
``message`` and the record's extra fields), ready for journald or any log shipper. SIGTERM and
SIGINT stop the server gracefully: it stops accepting, finishes the requests in flight (up to
``graceful_timeout`` seconds) and the process exits with status 0.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TextIO

import uvicorn

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JSONFormatter(logging.Formatter):
    """One JSON object per record; extra fields given with ``extra=`` become keys."""

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
            if name not in _STANDARD_ATTRIBUTES and name != "color_message":
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send volact's and uvicorn's logs to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter())
    for name in ("volact", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def bind_socket(bind: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 if ``bind`` contains a colon)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()


def serve(
    app: Any,
    sock: socket.socket,
    *,
    name: str,
    graceful_timeout: int = 10,
) -> str | None:
    """Serve ``app`` on the bound ``sock`` until SIGTERM or SIGINT; returns the signal's name.

    The stop is clean: uvicorn re-raises the signal it caught once it has shut down, and the
    handlers installed here absorb it so the process can exit 0 (a systemd unit sees a clean
    stop, not a kill).
    """
    log = logging.getLogger(f"volact.{name}")
    stopped_by: list[int] = []

    def absorb(signum: int, frame: FrameType | None) -> None:
        stopped_by.append(signum)

    previous = {sig: signal.signal(sig, absorb) for sig in (signal.SIGTERM, signal.SIGINT)}
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    def started() -> None:
        # One plain line on stdout for scripts and people (the host service prints the same).
        print(f"volact {name} listening on http://{shown}:{port}", flush=True)
        log.info(
            f"{name} service listening on http://{shown}:{port}",
            extra={"event": "listening", "bind": host, "port": port},
        )

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
    )
    try:
        _Server(config, started).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    reason = signal.Signals(stopped_by[0]).name if stopped_by else None
    log.info(f"{name} service stopped", extra={"event": "stopped", "signal": reason})
    return reason
