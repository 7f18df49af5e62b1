"""Host persistence behind the small :class:`~volact.store.base.Store` Protocol.

``open_store(url)`` picks the implementation from the URL:

- ``sqlite:///path/to/host.db`` — :class:`~volact.store.sqlite.SQLiteStore` (the default; a
  relative path after the three slashes is relative, ``sqlite:////abs`` is absolute, as in
  SQLAlchemy);
- ``memory://`` — :class:`~volact.store.memory.MemoryStore` (tests, the simulator);
- ``postgresql://user:password@host:port/dbname`` (or ``postgres://``) —
  :class:`~volact.store.postgres.PostgresStore`, which several host processes share (scale-out;
  see ``docs/scale-out.md``). Any libpq URL parameter works, e.g.
  ``?options=-csearch_path%3Dvolact`` for a schema of its own, or ``sslmode=verify-full``.
  psycopg is imported only when such a URL is opened.

The store is returned *unopened*: ``await store.open()`` connects and migrates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from volact.core.errors import ConfigurationError
from volact.sql.urls import POSTGRES_SCHEMES, redact_url, sqlite_url_path
from volact.store.base import EventRecord, KnownClient, Stats, Store
from volact.store.memory import MemoryStore
from volact.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from volact.store.postgres import PostgresStore

__all__ = [
    "EventRecord",
    "KnownClient",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "Stats",
    "Store",
    "open_store",
    "redact_url",
]

SCHEMES = ("sqlite:///", "memory://", *POSTGRES_SCHEMES)


def __getattr__(name: str) -> object:
    # PostgresStore is imported on first use, so commands that never touch PostgreSQL do not
    # pay for importing psycopg.
    if name == "PostgresStore":
        from volact.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str) -> Store:
    """The store for ``url`` (not yet opened). Raises ConfigurationError for an unknown
    scheme."""
    path = sqlite_url_path(url)
    if path is not None:
        if not path or path == ":memory:":
            raise ConfigurationError(
                f"database URL {url!r} names no file; write sqlite:///path/to/host.db "
                "(or memory:// for a store that is not kept)"
            )
        return SQLiteStore(path)
    if url == "memory://" or url.startswith("memory://"):
        return MemoryStore()
    if url.startswith(POSTGRES_SCHEMES):
        from volact.store.postgres import PostgresStore

        return PostgresStore(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ConfigurationError(
        f"unknown database URL scheme {scheme!r} in {redact_url(url)!r}; use sqlite:///PATH, "
        "postgresql://USER@HOST/DBNAME or memory://",
        {"supported": list(SCHEMES)},
    )
