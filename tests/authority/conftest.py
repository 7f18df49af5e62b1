"""Fixtures for the vendor side: a vendor directory, and a real `volact vendor serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.authority.helpers import Server, World, make_world, start_server, stop_server


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path / "vendor")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `volact vendor serve` process on a free loopback port (no rate limit)."""
    world = make_world(tmp_path_factory.mktemp("served") / "vendor")
    running = start_server(world, "--rate", "0")
    try:
        yield running
    finally:
        stop_server(running)
