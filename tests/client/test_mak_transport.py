"""A MAK activation goes through the License's injected transport: no socket is opened."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.authority.helpers import PRODUCT, issue_mak, make_world
from volact.authority.service import create_app
from volact.client import License, State
from volact.core.errors import HostUnreachable
from volact.core.protocol import MAK_ACTIVATIONS_PATH
from volact.net.transport import ASGITransportAdapter

VENDOR_URL = "http://vendor.test"


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to look up a name or connect a socket fails the test."""

    def refuse(*args: Any) -> None:
        raise AssertionError(f"the network was used: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.usefixtures("no_connections")
def test_a_mak_activates_through_the_injected_transport(tmp_path: Path) -> None:
    world = make_world(tmp_path / "vendor")
    mak = issue_mak(world, count=1)
    with world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
        transport = ASGITransportAdapter(create_app(vendor))
        lic = License.from_descriptor(
            descriptor, tmp_path / "client", transport=transport, machine_id="m1"
        )
        lic.install_key(mak)
        status = lic.activate(vendor_url=VENDOR_URL)
    assert (status.state, status.channel, status.valid_until) == (State.LICENSED, "mak", None)
    assert status.host == VENDOR_URL


class RecordingTransport:
    """A transport that records each call and answers like an unreachable service."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((url, body))
        raise HostUnreachable(f"cannot reach {url}", {"url": url})


@pytest.mark.usefixtures("no_connections")
def test_a_mak_request_reaches_the_injected_transport(tmp_path: Path) -> None:
    world = make_world(tmp_path / "vendor")
    mak = issue_mak(world, count=1)
    with world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
    transport = RecordingTransport()
    lic = License.from_descriptor(
        descriptor, tmp_path / "client", transport=transport, machine_id="m1"
    )
    lic.install_key(mak)
    with pytest.raises(HostUnreachable):
        lic.activate(vendor_url=VENDOR_URL)
    [(url, body)] = transport.calls
    assert url == f"{VENDOR_URL}{MAK_ACTIVATIONS_PATH}"
    assert body["cmid"] == lic.status().cmid
