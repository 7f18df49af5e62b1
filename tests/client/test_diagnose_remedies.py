"""`volact client diagnose` gives a remedy for each kind of failure (issue 19, point 5): a DNS
server that timed out or refused, no SRV record (NXDOMAIN), a host that refused the connection,
and something that is not a volact host (an HTTP or TLS answer)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from volact.client.diagnosis import remedy
from volact.client.discovery import Candidate, StaticDNS, Trace, TraceAttempt
from volact.core.errors import HostUnreachable, NoHostFound, VolactError
from volact.core.srv import SRVRecord
from volact.net.transport import HTTPTransport

from .conftest import World


def _diagnosed(world: World, outcomes: dict[str, str]) -> str:
    lic = world.machine("pc1", dns=StaticDNS(outcomes=outcomes))
    lic.install_key()
    lic.configure(domains=["corp.example"])
    diagnosis = lic.diagnose()
    assert not diagnosis.ok and diagnosis.read_only
    return diagnosis.verdict


def test_a_dns_timeout(world: World) -> None:
    verdict = _diagnosed(world, {"_volact._tcp.corp.example": "timeout"})
    assert verdict.startswith("FAILED: no_host_found")
    assert "the DNS server (system resolver) did not answer" in verdict
    assert "UDP and TCP 53" in verdict


def test_a_refused_query(world: World) -> None:
    verdict = _diagnosed(world, {"_volact._tcp.corp.example": "error: the server answered REFUSED"})
    assert "refused the query" in verdict and "set-dns-server" in verdict


def test_nxdomain(world: World) -> None:
    verdict = _diagnosed(world, {"_volact._tcp.corp.example": "nxdomain"})
    assert "no SRV record at _volact._tcp.corp.example (NXDOMAIN" in verdict
    assert "volact host dns-records" in verdict and "set-domain" in verdict


def test_a_host_that_refuses_the_connection(world: World) -> None:
    world.add_host("kms.corp.example:7688", threshold=1)
    world.network.down.add("kms.corp.example:7688")
    dns = StaticDNS(
        records={"_volact._tcp.corp.example": [SRVRecord(0, 0, 7688, "kms.corp.example")]}
    )
    lic = world.machine("pc1", dns=dns)
    lic.install_key()
    lic.configure(domains=["corp.example"])
    for activate in (False, True):  # the same remedy from the check and from a real attempt
        verdict = lic.diagnose(activate=activate).verdict
        assert verdict.startswith("FAILED: host_unreachable")
        assert "nothing accepts connections at kms.corp.example:7688" in verdict
        assert "open TCP 7688" in verdict


class _NotVolact(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>Not Found</html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotVolact)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _trace_with(candidate: Candidate, error: VolactError) -> Trace:
    trace = Trace(None, None, True, "system resolver", "_volact._tcp")
    trace.attempts.append(TraceAttempt(candidate, "unreachable", error.message))
    return trace


def test_an_http_answer_that_is_not_a_volact_host(web_server: int) -> None:
    candidate = Candidate("127.0.0.1", web_server, "manual")
    with pytest.raises(HostUnreachable) as caught:
        HTTPTransport().get_json(f"http://127.0.0.1:{web_server}/v1/health")
    found = remedy(caught.value, _trace_with(candidate, caught.value))
    assert found.startswith(
        f"something that is not a volact host answered at 127.0.0.1:{web_server}"
    )


def test_a_tls_endpoint_is_not_a_volact_host() -> None:
    candidate = Candidate("kms.corp.example", 443, "SRV")
    error = HostUnreachable(
        "cannot reach http://kms.corp.example:443/v1/health: RemoteProtocolError: illegal "
        "request line (an HTTPS/TLS port)"
    )
    assert remedy(error, _trace_with(candidate, error)).startswith("something that is not")


def test_other_failures_keep_the_codes_remedy() -> None:
    error = NoHostFound("no activation host found")
    trace = Trace(None, None, True, "system resolver", "_volact._tcp")
    assert "set-host" in remedy(error, trace)
