"""Small, careful file helpers shared by the vendor, host and client edges.

Writes are atomic (temp file in the same directory, fsync, rename, fsync of the directory), so a
crash leaves either the old or the new file, never half of one. Secret files are created with mode
0600 from the first byte. Every OS failure becomes :class:`~volact.core.errors.StorageError` with a
plain message (disk full, read-only directory, permission denied).

Reads follow one rule (:func:`read_bytes`): only a *regular* file is read. A FIFO, a device or a
socket is refused at once with one line, before a byte is read (opening a FIFO for reading would
otherwise wait for a writer forever, and ``/dev/zero`` never ends), and no file is read past the
limit its caller documents (``docs/file-formats.md`` lists them).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from volact.core.errors import BadRequest, NotFound, StorageError

MAX_FILE_BYTES = 1024 * 1024
# Keys, certificates, settings: a few hundred bytes each; 64 KiB leaves room and bounds a mistake.
MAX_SMALL_FILE_BYTES = 64 * 1024


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


def create_temporary(path: Path, mode: int) -> tuple[Path, int]:
    """A new temporary file beside ``path`` (to be renamed onto it), open for writing: its name
    and its open descriptor. The name is fresh, the file created here (O_EXCL) and never
    through a link, so a file or symlink left at a predictable name cannot choose the new file's
    mode or where its bytes go."""
    import secrets  # only when writing: reading (a client's status()) does without it

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    try:
        # Windows: no newline translation, and no O_NOFOLLOW (a link there needs privileges)
        flags = getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, mode)
    except OSError as exc:  # nothing of ours to clean up
        raise _cannot_write(path, exc) from exc
    return tmp, fd


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically; ``mode`` applies from creation."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    tmp, fd = create_temporary(path, mode)
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


def _what_it_is(mode: int) -> str:
    """A name for a file that is not a regular one, for the one-line refusal."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _not_regular(path: Path, mode: int, what: str) -> BadRequest:
    return BadRequest(
        f"{path} is {_what_it_is(mode)}; a {what} must be a regular file",
        {"path": str(path)},
    )


# O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused right after the fstat).
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def read_bytes(path: Path, *, what: str = "file", limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``NotFound`` when there is no such file; ``BadRequest`` (one line, at once) for a directory,
    FIFO, device or socket, and for a file over ``limit`` bytes; ``StorageError`` for any other
    OS failure. ``what`` names the file in the messages ("product descriptor").
    """
    path = Path(path)
    details = {"path": str(path)}
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError as exc:
        raise NotFound(f"no {what} at {path}", details) from exc
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP, errno.EISDIR):  # a socket, a directory
            with contextlib.suppress(OSError):
                raise _not_regular(path, os.stat(path).st_mode, what) from exc
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}", details) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode, what)
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}", details) from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise BadRequest(f"{path} is too large for a {what} (over {limit} bytes)", details)
    return data


def read_text(path: Path, *, what: str = "file", limit: int = MAX_FILE_BYTES) -> str:
    """:func:`read_bytes`, decoded as UTF-8 (``BadRequest`` when it is not text)."""
    data = read_bytes(path, what=what, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{path} is not a valid {what} (not text)", {"path": str(path)}) from exc


def read_json(path: Path, *, what: str = "file", limit: int = MAX_FILE_BYTES) -> Any:
    data = read_bytes(path, what=what, limit=limit)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"{path} is not a valid {what} (not JSON)") from exc
