"""Fixtures for the DNS tests: one real BIND server per test session, emptied between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dns.bind import BindServer, running_bind

PUBLISHED_NAMES = {
    "_volact._tcp.volact.test": "volact.test",
    "_volact._tcp.other.test": "other.test",
}


@pytest.fixture(scope="session")
def bind_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    with running_bind(tmp_path_factory.mktemp("bind")) as bind:
        yield bind


@pytest.fixture
def bind(bind_session: BindServer) -> BindServer:
    """The running BIND server, with no SRV records left over from an earlier test in the
    dynamic zones."""
    if bind_session.process.poll() is not None:
        pytest.fail(f"named exited; its log:\n{bind_session.log()[-3000:]}")
    for name, zone in PUBLISHED_NAMES.items():
        bind_session.clear_srv(name, zone)
    return bind_session
