"""One mapping of database failures (sqlite3, psycopg) to plain, one-line reasons.

The stores raise :class:`~volact.core.errors.StorageError` (or ``BadRequest`` for a constraint
the vendor's data broke) with these reasons, ``from`` the driver's exception, so that
``VOLACT_DEBUG=1`` can still show the cause. psycopg is looked at only when it was imported:
a process that never opened PostgreSQL never imports it.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from volact.core.errors import StorageError


def one_line(text: str) -> str:
    """A driver's (possibly multi-line) message as one line (``a; b``), without libpq's
    ``connection failed:`` prefix and ``FATAL:`` markers."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    joined = "; ".join(lines) or "unknown error"
    joined = joined.removeprefix("connection failed: ")
    return " ".join(joined.replace("FATAL:", "").split())


def sqlite_reason(exc: BaseException, path: str | Path) -> str:
    """Why the SQLite database at ``path`` failed, in words an operator acts on."""
    text = str(exc)
    lowered = text.lower()
    if "full" in lowered:
        return "the disk is full (or the database reached its size limit)"
    if "readonly" in lowered or "read-only" in lowered:
        return "the database or its directory is read-only"
    if "unable to open" in lowered:
        parent = Path(path).parent
        if not parent.exists():
            return f"the directory {parent} does not exist"
        return f"it cannot be opened (check that {parent} is writable)"
    if "locked" in lowered or "busy" in lowered:
        return "it stayed locked by another process"
    if "not a database" in lowered or "malformed" in lowered:
        return "the file is not a volact database, or it is damaged"
    return text


def sqlite_storage_error(exc: BaseException, path: str) -> StorageError:
    """The host's StorageError for a failure of its SQLite database at ``path`` (the reason in
    the message, the driver's text in the details; the caller raises it ``from exc``)."""
    return StorageError(
        f"the database {path} cannot be used: {sqlite_reason(exc, path)}", {"cause": str(exc)}
    )


def driver_errors() -> tuple[type[Exception], ...]:
    """Every database driver's base error class in use: sqlite3's, and psycopg's if loaded."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def is_constraint_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is a unique, foreign-key or check constraint the data broke."""
    if isinstance(exc, sqlite3.IntegrityError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.IntegrityError)


def is_connection_failure(exc: BaseException) -> bool:
    """Whether a psycopg error says the connection is gone (SQLSTATE class 08, or the server
    shutting down or cutting the session off)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    )
