"""Hostile connections against a real `volact host serve` process (issue 17, findings 1 and 3).

One address (127.0.0.2; every 127.0.0.0/8 address is this machine on Linux) opens many
connections, dribbles headers or sits idle; the host cuts or refuses it and goes on answering
everybody else (127.0.0.1). Then the HTTP details: transfer codings, trailing slashes,
pipelined answers before a malformed request, duplicate JSON keys. Every condition is polled
with a generous bound; nothing waits a fixed time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import ServedHost
from .helpers import body, make_host

Serve = Callable[..., ServedHost]
ATTACKER = "127.0.0.2"
WAIT = 60.0  # the longest any condition below may take (it is polled)
PARTIAL_HEAD = b"POST /v1/activate HTTP/1.1\r\nHost: x\r\n"


def until(condition: Callable[[], bool], what: str, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for: {what}"
        time.sleep(0.05)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def connect(url: str, source: str = ATTACKER) -> socket.socket:
    return socket.create_connection(address(url), timeout=10, source_address=(source, 0))


class Peer:
    """One raw connection, and what the host has sent on it so far."""

    def __init__(self, url: str, source: str = ATTACKER) -> None:
        self.sock = connect(url, source)
        self.received = b""
        self.closed = False

    def poll(self) -> bool:
        """Read what has come without waiting; True once the host has closed the connection."""
        if self.closed:
            return True
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.closed = True
                    break
                self.received += data
        except BlockingIOError:
            pass
        except OSError:  # reset by the host
            self.closed = True
        if self.closed:
            self.sock.close()
        return self.closed

    def send(self, data: bytes) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(data)
        except OSError:
            self.poll()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def request_on(url: str, method: str, path: str, source: str = "127.0.0.1", **kw: Any) -> Any:
    """One request from ``source``; (status, headers, JSON body)."""
    host, port = address(url)
    conn = http.client.HTTPConnection(host, port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, **kw)
        response = conn.getresponse()
        payload = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(payload)
    finally:
        conn.close()


def health(url: str, source: str = "127.0.0.1") -> int:
    status, _, answer = request_on(url, "GET", "/v1/health", source)
    assert answer["ok"] is True
    return int(status)


def count_of(url: str, n: int, now: int) -> int:
    """Activate client ``n`` (threshold 5, so it is refused and counted); the count it saw."""
    status, _, answer = request_on(
        url,
        "POST",
        "/v1/activate",
        body=json.dumps(body(n, now)).encode(),
        headers={"content-type": "application/json"},
    )
    assert (status, answer["error"]["code"]) == (409, "count_insufficient"), answer
    return int(answer["error"]["details"]["count"])


def exchange(url: str, raw: bytes) -> list[tuple[int, dict[str, str], Any]]:
    """Send raw bytes; every answer until the host closes the connection (or 10 s pass)."""
    data = b""
    with connect(url, "127.0.0.1") as sock:
        with contextlib.suppress(OSError):
            sock.sendall(raw)
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                data += chunk
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        answers.append((int(lines[0].split()[1]), headers, json.loads(rest[:length])))
        data = rest[length:]
    return answers


def serve_log(served: ServedHost) -> str:
    return served.stderr_path.read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not here")
def test_one_address_cannot_exhaust_a_host_with_256_descriptors(
    tmp_path: Path, serve_host: Serve
) -> None:
    """The reproduction of finding 1: 300 half-sent requests from one address against a host
    limited to 256 open files. The host holds at most its per-address cap of them, refuses the
    rest at once (429 in the one shape), cuts the ones it holds at the header timeout (10 s), never
    runs out of descriptors, and answers every health check meanwhile."""
    now = int(time.time())
    make_host(tmp_path / "host", now)
    served = serve_host(
        tmp_path / "host", "--rate-limit", "0", prefix=("prlimit", "--nofile=256:256")
    )
    peers = []
    for _ in range(300):
        peer = Peer(served.url)
        peer.send(PARTIAL_HEAD)
        peers.append(peer)
    try:
        assert [health(served.url) for _ in range(5)] == [200] * 5
        assert count_of(served.url, 1, now) == 1
        # Every attacking connection ends: refused at once over the cap, or cut at 10 s.
        until(lambda: all([peer.poll() for peer in peers]), "every attacking socket to end")
        refused = [peer for peer in peers if peer.received]
        assert refused and len(refused) <= 300 - 64
        for peer in refused:
            assert peer.received.startswith(b"HTTP/1.1 429 "), peer.received[:80]
            answer = json.loads(peer.received.split(b"\r\n\r\n", 1)[1])
            assert answer["ok"] is False and answer["error"]["code"] == "rate_limited"
        assert health(served.url, ATTACKER) == 200  # the address is served again
    finally:
        for peer in peers:
            peer.close()
    log = serve_log(served)
    assert "Too many open files" not in log and "EMFILE" not in log
    assert "checking for a new host certificate failed" not in log  # the watcher (every 10 s)
    assert "connections refused over the caps" in log or len(refused) == 0
    assert served.stop() == 0


@pytest.mark.slow
def test_slowloris_connections_are_cut_at_the_header_timeout(
    tmp_path: Path, serve_host: Serve
) -> None:
    now = int(time.time())
    make_host(tmp_path / "host", now)
    served = serve_host(tmp_path / "host")  # the default header timeout: 10 s
    peers = [Peer(served.url) for _ in range(5)]
    for peer in peers:
        peer.send(PARTIAL_HEAD + b"X-Slow: ")

    def dribbled() -> bool:
        for peer in peers:
            if not peer.poll():
                peer.send(b"y")  # a byte of a header every poll, never the end
        return all(peer.closed for peer in peers)

    until(dribbled, "the host to cut five dribbling connections")
    assert all(peer.received == b"" for peer in peers)  # cut, not answered
    assert health(served.url) == 200
    assert served.stop() == 0


@pytest.mark.slow
def test_idle_connections_are_closed(tmp_path: Path, serve_host: Serve) -> None:
    """A connection that never sends a request is closed at the header timeout; a kept-alive
    one that sends nothing more after its answer, at the idle timeout."""
    now = int(time.time())
    make_host(tmp_path / "host", now)
    served = serve_host(tmp_path / "host")  # the defaults: 10 s for a head, 5 s idle
    silent = Peer(served.url)
    kept = Peer(served.url)
    kept.send(b"GET /v1/health HTTP/1.1\r\nHost: h\r\n\r\n")
    until(lambda: b"\r\n\r\n" in kept.received or kept.poll(), "the health answer")
    assert kept.received.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" not in kept.received.lower()
    until(kept.poll, "the host to close the idle kept-alive connection")
    until(silent.poll, "the host to close the connection that sent nothing")
    assert silent.received == b""
    assert served.stop() == 0


@pytest.mark.slow
def test_connections_over_the_per_address_cap_are_refused_and_others_served(
    tmp_path: Path, serve_host: Serve
) -> None:
    now = int(time.time())
    make_host(tmp_path / "host", now)
    served = serve_host(tmp_path / "host")  # the default: 128 connections per address
    held = [Peer(served.url) for _ in range(128)]
    assert health(served.url) == 200  # another address; the 128 are accepted by now
    over = Peer(served.url)
    until(over.poll, "the host to refuse a fifth connection from one address")
    head, _, payload = over.received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 ") and b"retry-after: 1" in head.lower()
    answer = json.loads(payload)
    assert answer["error"]["code"] == "rate_limited" and answer["error"]["details"]["limit"] == 128
    assert [health(served.url) for _ in range(3)] == [200] * 3
    assert not any(peer.poll() for peer in held)  # those it holds stay open
    held[0].close()

    def served_again() -> bool:
        try:
            return health(served.url, ATTACKER) == 200
        except (OSError, http.client.HTTPException, json.JSONDecodeError, AssertionError):
            return False

    until(served_again, "the address to be served once it holds fewer")
    for peer in held:
        peer.close()
    assert served.stop() == 0


@pytest.mark.slow
def test_connections_over_the_global_cap_are_refused_with_503(
    tmp_path: Path, serve_host: Serve
) -> None:
    now = int(time.time())
    make_host(tmp_path / "host", now)
    served = serve_host(
        tmp_path / "host", "--max-connections", "6", "--max-connections-per-address", "100"
    )
    held = [Peer(served.url) for _ in range(6)]
    over = Peer(served.url, "127.0.0.3")
    until(over.poll, "the host to refuse a seventh connection")
    assert over.received.startswith(b"HTTP/1.1 503 ")
    answer = json.loads(over.received.partition(b"\r\n\r\n")[2])
    assert answer["error"]["code"] == "rate_limited" and answer["error"]["details"]["limit"] == 6
    for peer in held:
        peer.close()

    def served_again() -> bool:
        try:
            return health(served.url, "127.0.0.3") == 200
        except (OSError, http.client.HTTPException, json.JSONDecodeError, AssertionError):
            return False

    until(served_again, "the host to serve again once connections are closed")
    assert served.stop() == 0


# --- HTTP details (finding 3) -------------------------------------------------------------------

HEAD = b"POST /v1/activate HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"


def chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


def plain(payload: bytes, head: bytes = b"") -> bytes:
    return HEAD + head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload


@pytest.fixture
def host_url(tmp_path: Path, serve_host: Serve) -> Any:
    now = int(time.time())
    make_host(tmp_path / "host", now)
    served = serve_host(tmp_path / "host", "--rate-limit", "0")
    yield served.url
    assert served.stop() == 0


def test_unknown_transfer_codings_are_501_and_not_counted(host_url: str) -> None:
    now = int(time.time())
    good = json.dumps(body(1, now)).encode()
    for coding in (b"gzip, chunked", b"identity, chunked", b"x-custom, chunked"):
        answers = exchange(
            host_url, HEAD + b"Transfer-Encoding: " + coding + b"\r\n\r\n" + chunked(good)
        )
        assert [(s, a["error"]["code"]) for s, _, a in answers] == [(501, "bad_request")], coding
        assert answers[0][1]["connection"] == "close"
    # Chunked alone is read like any body.
    [(status, _, answer)] = exchange(
        host_url, HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked(good)
    )
    assert (status, answer["error"]["details"]["count"]) == (409, 1)
    assert count_of(host_url, 2, now) == 2


def test_trailing_slashes_are_404_never_a_redirect(host_url: str) -> None:
    good = json.dumps(body(1, int(time.time()))).encode()
    for raw in (
        b"GET /v1/health/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        plain(good, b"Connection: close\r\n")
        .replace(b"/v1/activate", b"/v1/activate/")
        .replace(b"Host: h", b"Host: evil.example"),
    ):
        [(status, headers, answer)] = exchange(host_url, raw)
        assert (status, answer["error"]["code"]) == (404, "not_found")
        assert "location" not in headers


def test_duplicate_json_keys_are_bad_requests(host_url: str) -> None:
    now = int(time.time())
    good = json.dumps(body(1, now)).encode()
    duplicated = good[:-1] + b', "cmid": "00000000-0000-4000-8000-000000000001"}'
    [(status, _, answer)] = exchange(host_url, plain(duplicated, b"Connection: close\r\n"))
    assert (status, answer["error"]["code"]) == (400, "bad_request")
    assert answer["error"]["message"] == "the body names a member of an object twice"
    assert count_of(host_url, 2, now) == 1  # nothing was counted


def test_a_counted_request_is_answered_before_the_malformed_one_after_it(host_url: str) -> None:
    now = int(time.time())
    good = json.dumps(body(1, now)).encode()
    answers = exchange(host_url, plain(good) + plain(good) + b"THIS IS NOT HTTP\r\n\r\n")
    assert [(s, a["error"]["code"]) for s, _, a in answers] == [
        (409, "count_insufficient"),
        (409, "count_insufficient"),
        (400, "bad_request"),
    ]
    assert [a["error"]["details"]["count"] for _, _, a in answers[:2]] == [1, 1]
    assert "malformed" in answers[2][2]["error"]["message"]
    assert answers[2][1]["connection"] == "close"
    assert count_of(host_url, 2, now) == 2  # the one client counted, and this one
