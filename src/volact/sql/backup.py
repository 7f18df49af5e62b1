"""A consistent copy of a SQLite database while it is in use (``volact host backup``).

SQLite's online backup API (``sqlite3.Connection.backup``) copies the database page by page
and restarts when a writer changes it meanwhile, so the copy is one consistent state even while
``volact host serve`` commits; copying the file (and its ``-wal``) by hand is not. The copy is
written beside the target under a temporary name, checked (``PRAGMA quick_check``), made
private (0600: it lists the customer's machines) and renamed into place, so a failed backup
never leaves half a file under the target's name.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from volact.core.errors import NotFound, StorageError
from volact.fileio import create_temporary
from volact.sql.errors import sqlite_storage_error

PAGES_PER_STEP = 1024  # pages copied between the writer's chances to commit


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the SQLite database ``source`` to ``target`` (replaced atomically); its size in
    bytes. ``NotFound`` when ``source`` does not exist (it is never created)."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise NotFound(f"no database at {source} (the host has not served yet)")
    if target.resolve() == source.resolve():
        raise StorageError(f"the backup {target} would overwrite the database itself")
    try:
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True)
    except sqlite3.Error as exc:
        raise sqlite_storage_error(exc, str(source)) from exc
    temporary: Path | None = None
    try:
        temporary, fd = create_temporary(target, 0o600)
        os.close(fd)
        try:
            writer = sqlite3.connect(temporary)
            try:
                reader.backup(writer, pages=PAGES_PER_STEP)
                (verdict,) = writer.execute("PRAGMA quick_check").fetchone()
                # A self-contained file: no -wal to carry along.
                writer.execute("PRAGMA journal_mode=DELETE").fetchone()
            finally:
                writer.close()
        except sqlite3.Error as exc:
            raise sqlite_storage_error(exc, str(target)) from exc
        if verdict != "ok":
            raise StorageError(f"the copy of {source} failed its check: {verdict}")
        try:
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        reader.close()
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
    return target.stat().st_size
