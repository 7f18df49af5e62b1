"""The real PostgreSQL server for tests: a fresh schema per test, dropped afterwards.

The server is the one on 127.0.0.1:5432 (user postgres, trust auth, database ``test``), which
``scripts/setup`` starts; ``VOLACT_TEST_POSTGRES`` may name another. These tests never skip: if
the server is unreachable they fail and say so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

SERVER_URL = os.environ.get("VOLACT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the test database, or a clear test failure."""
    try:
        return psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        pytest.fail(
            f"PostgreSQL is not reachable at {SERVER_URL} ({reason}); these tests need it: "
            "run scripts/setup, which starts it",
            pytrace=False,
        )


def schema_url(schema: str, **parameters: str) -> str:
    """The URL of ``schema`` in the test database (its tables go there, via search_path)."""
    query = "&".join(
        [f"options={quote(f'-csearch_path={schema}')}"]
        + [f"{name}={quote(value)}" for name, value in parameters.items()]
    )
    separator = "&" if "?" in SERVER_URL else "?"
    return f"{SERVER_URL}{separator}{query}"


@contextmanager
def fresh_schema(**parameters: str) -> Iterator[str]:
    """Create an empty schema, yield its URL, drop it (and everything in it) at the end."""
    schema = f"volact_test_{uuid.uuid4().hex[:16]}"
    parameters.setdefault("application_name", f"volact-{schema}")
    with admin_connection() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(schema, **parameters)
    finally:
        with admin_connection() as conn:
            # Sessions a test left behind (a killed host) must not keep the schema's locks.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = %s",
                (f"volact-{schema}",),
            )
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
