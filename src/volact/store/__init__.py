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

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from volact.core.errors import BadRequest
from volact.store.base import ClientRecord, EventRecord, Stats, Store
from volact.store.memory import MemoryStore
from volact.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from volact.store.postgres import PostgresStore

__all__ = [
    "ClientRecord",
    "EventRecord",
    "MemoryStore",
    "PostgresStore",
    "SQLiteStore",
    "Stats",
    "Store",
    "open_store",
    "redact_url",
]

SCHEMES = ("sqlite:///", "memory://", "postgresql://", "postgres://")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# A password given as a URL parameter (libpq accepts ?password=…) rather than in the netloc.
_QUERY_PASSWORD = re.compile(r"(?i)(^|&)(password)=[^&]*")


def redact_url(url: str) -> str:
    """The URL without its password, fit to print or log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unreadable URL>"
    if password is not None:
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{netloc}")
    if parts.query:
        parts = parts._replace(query=_QUERY_PASSWORD.sub(r"\1\2=***", parts.query))
    return urlunsplit(parts)


def __getattr__(name: str) -> object:
    # PostgresStore is imported on first use, so commands that never touch PostgreSQL do not
    # pay for importing psycopg.
    if name == "PostgresStore":
        from volact.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str) -> Store:
    """The store for ``url`` (not yet opened). Raises BadRequest for an unknown scheme."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path or path == ":memory:":
            raise BadRequest(
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
    raise BadRequest(
        f"unknown database URL scheme {scheme!r} in {redact_url(url)!r}; use sqlite:///PATH, "
        "postgresql://USER@HOST/DBNAME or memory://",
        {"supported": list(SCHEMES)},
    )
