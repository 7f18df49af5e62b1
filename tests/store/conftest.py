"""The store suite runs once per store: add a store by adding a param and a branch here.

A ``postgres`` param would open ``PostgresStore`` on a fresh database (marked ``postgres``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from volact.store import MemoryStore, SQLiteStore, Store

# A factory that makes a store (unopened) for a test; calling it twice for SQLite gives a second
# store on the SAME file, which is how persistence across a restart is tested.
StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(store_kind: str, tmp_path: Path) -> StoreFactory:
    if store_kind == "memory":
        shared = MemoryStore()
        return lambda: shared
    path = tmp_path / "host.db"
    return lambda: SQLiteStore(path)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    opened = make_store()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
