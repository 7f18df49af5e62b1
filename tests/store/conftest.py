"""The store suite runs once per store: add a store by adding a param and a branch here.

The ``postgres`` param opens ``PostgresStore`` on the test server (``VOLACT_TEST_POSTGRES``, else
the throwaway cluster of tests/scaleout/postgres.py) in a fresh schema of its own, dropped at
teardown, so tests never collide and can run again. It is never skipped: a server that cannot be
had fails the test with a clear message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.scaleout.postgres import fresh_schema
from volact.store import MemoryStore, SQLiteStore, Store

# A factory that makes a store (unopened) for a test; calling it twice for SQLite gives a second
# store on the SAME file, which is how persistence across a restart is tested.
StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(store_kind: str, tmp_path: Path) -> Iterator[StoreFactory]:
    if store_kind == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif store_kind == "postgres":
        from volact.store.postgres import PostgresStore

        with fresh_schema() as url:
            yield lambda: PostgresStore(url)
    else:
        path = tmp_path / "host.db"
        yield lambda: SQLiteStore(path)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    opened = make_store()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
