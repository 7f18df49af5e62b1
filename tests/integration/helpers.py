"""Helpers for the end-to-end tests: the real vendor, real certification, in-process hosts
(the real service and app) and real clients."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.authority.helpers import GROUP, PRODUCT, World, make_world
from tests.client.conftest import run_sync
from volact.authority.operations import VIA_OFFLINE
from volact.client import License
from volact.client.discovery import StaticDNS
from volact.core import offline
from volact.core.errors import HostUnreachable
from volact.host import certification
from volact.host.app import create_app
from volact.host.identity import HostFiles
from volact.host.service import HostService
from volact.net.transport import ASGITransportAdapter
from volact.store import MemoryStore


def _now() -> int:
    return int(time.time())


def certify(world: World, files: HostFiles) -> str:
    """Certify the host in ``files`` offline (request, fulfil, install); its cert id."""
    request = certification.write_host_request_file(files, now=_now())
    with world.open() as vendor:
        response = vendor.certify_host(
            offline.read_host_request(request.to_file()), via=VIA_OFFLINE
        )
    return certification.install_host_response(files, response.to_file(), now=_now()).cert_id


class Hosts:
    """In-process hosts by address; the client's transport."""

    def __init__(self) -> None:
        self.services: dict[str, HostService] = {}
        self.apps: dict[str, ASGITransportAdapter] = {}
        self.down: set[str] = set()

    def start(self, address: str, files: HostFiles) -> HostService:
        service = HostService.from_files(files, MemoryStore(), _now, maintenance_interval=0)
        service.certificate_check_interval = 0  # taken up explicitly below
        run_sync(service.start())
        self.services[address] = service
        self.apps[address] = ASGITransportAdapter(create_app(service, rate_limit=0))
        return service

    def post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        address = url.split("://", 1)[1].split("/", 1)[0]
        if address in self.down or address not in self.apps:
            raise HostUnreachable(f"cannot reach {url}", {"url": url})
        return self.apps[address].post_json(url, body)

    def close(self) -> None:
        for service in self.services.values():
            run_sync(service.stop())


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    running = Hosts()
    yield running
    running.close()


def low_threshold(world: World) -> World:
    """``world`` with its group's threshold at 1 (one client activates)."""
    with world.open() as vendor:
        vendor.set_group(GROUP, {"threshold": 1})
    return world


@pytest.fixture
def vendor_world(tmp_path: Path) -> World:
    return low_threshold(make_world(tmp_path / "vendor"))


def machine(world: World, tmp_path: Path, name: str, hosts: Hosts, host: str) -> License:
    with world.open() as vendor:
        descriptor = vendor.descriptor(PRODUCT)
    lic = License(
        descriptor,
        tmp_path / "machines" / name,
        transport=hosts,
        dns=StaticDNS(),
        random=random.Random(name),
        machine_id=f"machine-{name}",
    )
    lic.install_key()
    lic.configure(manual_host=host)
    return lic
