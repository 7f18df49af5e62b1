"""Session-wide fixtures: the throwaway PostgreSQL cluster (see tests/scaleout/postgres.py) is
stopped and removed when the session ends, whether tests passed or failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scaleout import postgres


@pytest.fixture(scope="session", autouse=True)
def _throwaway_postgres() -> Iterator[None]:
    """Started by the first test that needs PostgreSQL (if ``VOLACT_TEST_POSTGRES`` names no
    server); stopped here, at the end of the session."""
    yield
    postgres.stop_throwaway_cluster()
