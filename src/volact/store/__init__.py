"""Host persistence behind the small :class:`~volact.store.base.Store` Protocol.

``open_store(url)`` picks the implementation from the URL:

- ``sqlite:///path/to/host.db`` — :class:`~volact.store.sqlite.SQLiteStore` (the default; a
  relative path after the three slashes is relative, ``sqlite:////abs`` is absolute, as in
  SQLAlchemy);
- ``memory://`` — :class:`~volact.store.memory.MemoryStore` (tests, the simulator).

The store is returned *unopened*: ``await store.open()`` connects and migrates.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from volact.core.errors import BadRequest
from volact.store.base import ClientRecord, EventRecord, Stats, Store
from volact.store.memory import MemoryStore
from volact.store.sqlite import SQLiteStore

__all__ = [
    "ClientRecord",
    "EventRecord",
    "MemoryStore",
    "SQLiteStore",
    "Stats",
    "Store",
    "open_store",
    "redact_url",
]

SCHEMES = ("sqlite:///", "memory://")


def redact_url(url: str) -> str:
    """The URL without its password, fit to print or log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


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
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise BadRequest(
        f"unknown database URL scheme {scheme!r} in {redact_url(url)!r}; use sqlite:///PATH "
        "or memory://",
        {"supported": list(SCHEMES)},
    )
