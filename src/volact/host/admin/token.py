"""The admin token: a secret in the host directory (``admin.token``, mode 0600).

``volact host init`` makes it, ``volact host admin-token --rotate`` replaces it. The running
host reads the file again whenever it changes (its modification time and size), so a rotation
takes effect at once, and every dashboard session signed with the old token ends.

Everything that is compared with the token is compared in constant time. The dashboard's
session cookie and its CSRF value are derived from the token (HMAC-SHA256 with a purpose label),
so no server-side session table is needed and rotating the token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from volact.core.errors import ConfigurationError, NotFound, StorageError, Unauthorized
from volact.fileio import MAX_SMALL_FILE_BYTES, read_text, write_private

TOKEN_FILE = "admin.token"
TOKEN_PREFIX = "vat_"


def token_path(directory: Path) -> Path:
    return Path(directory) / TOKEN_FILE


def make_token(directory: Path) -> str:
    """Write a new random admin token (replacing any) and return it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    path = token_path(directory)
    write_private(path, (token + "\n").encode("ascii"))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Made by root (`sudo volact host admin-token --rotate`), it still belongs to the host
        # directory's owner, the service user: a root-owned 0600 token locks the host out.
        owner = os.stat(directory)
        try:
            os.chown(path, owner.st_uid, owner.st_gid)
        except OSError as exc:
            raise StorageError(f"cannot give {path} to the host's user: {exc.strerror}") from exc
    return token


def ensure_token(directory: Path) -> tuple[str, bool]:
    """The admin token of ``directory``, made when there is none; (token, made now)."""
    path = token_path(directory)
    if path.exists():
        return read_token(directory), False
    return make_token(directory), True


def read_token(directory: Path) -> str:
    path = token_path(directory)
    try:
        text = read_text(path, what="admin token", limit=MAX_SMALL_FILE_BYTES).strip()
    except NotFound as exc:
        raise ConfigurationError(
            f"no admin token in {directory}; run `volact host admin-token --rotate` to make one"
        ) from exc
    if not text:
        raise ConfigurationError(f"{path} is empty; run `volact host admin-token --rotate`")
    return text


def derive(token: str, purpose: str) -> str:
    """A value bound to the token and a purpose (``session``, ``csrf``)."""
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()


class AdminToken:
    """The token file of a running host, read again when it changes."""

    def __init__(self, directory: Path) -> None:
        self.path = token_path(directory)
        self.directory = Path(directory)
        self._seen: tuple[int, int, int] | None = None
        self._token = ""

    def current(self) -> str:
        """The token as the file holds it now (raises ConfigurationError without one)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size) if stat else None
        if seen != self._seen or not self._token:
            self._token = read_token(self.directory)
            self._seen = seen
        return self._token

    def check(self, offered: str | None) -> None:
        """Raise :class:`Unauthorized` unless ``offered`` is the token."""
        if not offered or not hmac.compare_digest(offered.encode(), self.current().encode()):
            raise Unauthorized(_UNAUTHORIZED)

    def check_derived(self, offered: str | None, purpose: str) -> None:
        expected = derive(self.current(), purpose)
        if not offered or not hmac.compare_digest(offered.encode(), expected.encode()):
            raise Unauthorized(_UNAUTHORIZED)


_UNAUTHORIZED = "the admin token is missing or wrong"
