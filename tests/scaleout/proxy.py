"""A TCP relay to PostgreSQL that a test can cut and restore: the database "goes away" for real
(connections reset, new ones refused) without touching the server itself."""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading

from .postgres import server_address

BUFFER = 65536


class TCPProxy:
    """Relays 127.0.0.1:``port`` to the PostgreSQL server until :meth:`cut`."""

    def __init__(self) -> None:
        self.target = server_address()
        self.port = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop: socket.socket | None = None
        self._wake: socket.socket | None = None

    def start(self) -> TCPProxy:
        """Listen (on the same port as before, after a cut) and relay in a thread."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop, self._wake = socket.socketpair()
        self._thread = threading.Thread(
            target=self._relay, args=(listener, self._stop), daemon=True
        )
        self._thread.start()
        return self

    def cut(self) -> None:
        """Close the listener and every relayed connection: the database is gone."""
        if self._wake is not None:
            self._wake.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=10)
        for sock in (self._wake, self._stop):
            if sock is not None:
                sock.close()
        self._thread = self._wake = self._stop = self._listener = None

    def _relay(self, listener: socket.socket, stop: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        peers: dict[socket.socket, socket.socket] = {}
        selector.register(listener, selectors.EVENT_READ)
        selector.register(stop, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in selector.select(timeout=1.0):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is stop:
                        return
                    if sock is listener:
                        with contextlib.suppress(BlockingIOError):
                            client, _ = listener.accept()
                            upstream = socket.create_connection(self.target, timeout=5)
                            for one, two in ((client, upstream), (upstream, client)):
                                one.setblocking(True)
                                peers[one] = two
                                selector.register(one, selectors.EVENT_READ)
                        continue
                    other = peers.get(sock)
                    try:
                        data = sock.recv(BUFFER)
                    except OSError:
                        data = b""
                    if data and other is not None:
                        with contextlib.suppress(OSError):
                            other.sendall(data)
                            continue
                    for gone in (sock, other):  # one side closed: close both
                        if gone is not None and gone in peers:
                            selector.unregister(gone)
                            peers.pop(gone)
                            gone.close()
        finally:
            for sock in list(peers):
                with contextlib.suppress(OSError):
                    # Linger 0: a reset, as when the database host dies, not a polite close.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            selector.close()
            listener.close()
