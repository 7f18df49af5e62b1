"""Small, careful file helpers shared by the vendor, host and client edges.

Writes are atomic (temp file in the same directory, fsync, rename, fsync of the directory), so a
crash leaves either the old or the new file, never half of one. Secret files are created with mode
0600 from the first byte. Every OS failure becomes :class:`~volact.core.errors.StorageError` with a
plain message (disk full, read-only directory, permission denied).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from volact.core.errors import BadRequest, NotFound, StorageError

MAX_FILE_BYTES = 1024 * 1024


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _cannot_write(path: Path, exc: OSError) -> StorageError:
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically; ``mode`` applies from creation."""
    path = Path(path)
    # A fresh name, created here (O_EXCL) and never through a link: a file or symlink left at a
    # predictable name cannot choose the new file's mode or where its bytes go.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Windows: no newline translation, and no O_NOFOLLOW (a link there needs privileges)
        flags = getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, mode)
    except OSError as exc:  # nothing of ours to clean up
        raise _cannot_write(path, exc) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _cannot_write(path, exc) from exc
    _fsync_dir(path.parent)


def write_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file, mode 0600 from the start (never world-readable, even briefly)."""
    write_bytes_atomic(path, data, mode=0o600)


def read_bytes(path: Path, *, what: str = "file", limit: int = MAX_FILE_BYTES) -> bytes:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError as exc:
        raise NotFound(f"no {what} at {path}") from exc
    except IsADirectoryError as exc:
        raise BadRequest(f"{path} is a directory, not a {what}") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise BadRequest(f"{path} is too large for a {what} (over {limit} bytes)")
    return data


def read_json(path: Path, *, what: str = "file", limit: int = MAX_FILE_BYTES) -> Any:
    data = read_bytes(path, what=what, limit=limit)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"{path} is not a valid {what} (not JSON)") from exc
