"""Fixtures for scale-out: a fresh PostgreSQL schema per test, stores on it, a cuttable relay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest

from volact.store.postgres import PostgresStore

from .postgres import admin_connection, fresh_schema
from .proxy import TCPProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of an empty schema of its own in the test database (dropped afterwards)."""
    with fresh_schema() as url:
        yield url


@pytest.fixture
async def make_pg(pg_url: str) -> AsyncIterator[Callable[..., PostgresStore]]:
    """``make_pg(**options)``: an unopened PostgresStore on the test's schema (closed at the end).

    Each store has its own pool and writer, as a separate host process would.
    """
    made: list[PostgresStore] = []

    def make(url: str | None = None, **options: Any) -> PostgresStore:
        store = PostgresStore(url or pg_url, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
def sql() -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection to the test database, for looking behind the store's back."""
    with admin_connection() as conn:
        yield conn


@pytest.fixture
def proxy() -> Iterator[TCPProxy]:
    relay = TCPProxy().start()
    yield relay
    relay.cut()
