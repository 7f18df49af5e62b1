"""The vendor's directory (``--dir`` / ``VOLACT_VENDOR_DIR``) and the files in it.

Layout (the directory is created with mode 0700)::

    vendor.db               the vendor store (SQLite, mode 0600): identity, root key list,
                            groups, products, every key issued and every activation made with it
    root-keys/<seq>.pem     one Ed25519 private root key per file (mode 0600, never printed);
                            ``seq`` is the key's number in the ``root_keys`` table

The private keys live in files rather than in the database so that a vendor can keep them on
separate storage (or back them up separately) and so that no SQL dump ever contains one.

With ``--db postgresql://…`` the store is in PostgreSQL and the directory holds only
``root-keys/``; every vendor process sharing the database needs its own copy of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from volact.core.errors import BadRequest, NotFound, StorageError
from volact.crypto import KeyFormatError, SigningKey
from volact.fileio import MAX_SMALL_FILE_BYTES, read_bytes, write_private

DATABASE_FILE = "vendor.db"
ROOT_KEYS_DIR = "root-keys"


class VendorDir:
    """Paths and private key files of one vendor directory."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @property
    def database(self) -> Path:
        return self.directory / DATABASE_FILE

    @property
    def root_keys_dir(self) -> Path:
        return self.directory / ROOT_KEYS_DIR

    def exists(self) -> bool:
        return self.database.exists()

    def require(self) -> None:
        """Raise :class:`NotFound` (with what to do) unless the directory was initialised."""
        if not self.exists():
            raise NotFound(
                f"no vendor in {self.directory}; run `volact vendor init` first "
                "(or pass --dir / set VOLACT_VENDOR_DIR)"
            )

    def require_root_keys(self) -> None:
        """Raise :class:`NotFound` unless ``root-keys/`` exists (a vendor on PostgreSQL)."""
        if not self.root_keys_dir.is_dir():
            raise NotFound(
                f"no {ROOT_KEYS_DIR}/ in the vendor directory {self.directory}; copy it from the "
                "vendor directory where `volact vendor init` ran (or pass --dir)"
            )

    def create(self, database: Path | None = None) -> None:
        """Create the directory and ``root-keys/`` with mode 0700, and an empty 0600 SQLite
        database (``database``, default ``vendor.db`` here)."""
        database = self.database if database is None else database
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.root_keys_dir.mkdir(mode=0o700, exist_ok=True)
            # Create the database file 0600 before SQLite opens it: it holds secret keys.
            fd = os.open(database, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            raise StorageError(
                f"cannot create the vendor directory {self.directory}: {exc}"
            ) from exc

    def create_keys_only(self) -> None:
        """Create the directory and ``root-keys/`` (mode 0700) for a vendor on PostgreSQL."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.root_keys_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the vendor directory {self.directory}: {exc}"
            ) from exc

    def root_key_path(self, seq: int) -> Path:
        return self.root_keys_dir / f"{seq}.pem"

    def save_root_key(self, seq: int, key: SigningKey) -> None:
        path = self.root_key_path(seq)
        if path.exists():
            raise StorageError(f"{path} exists already; refusing to overwrite a root key")
        try:
            write_private(path, key.to_pem())
        except OSError as exc:
            raise StorageError(f"cannot write the root key {path}: {exc}") from exc

    def load_root_key(self, seq: int) -> SigningKey:
        path = self.root_key_path(seq)
        try:
            data = read_bytes(path, what="root key", limit=MAX_SMALL_FILE_BYTES)
        except NotFound as exc:
            raise StorageError(f"the root key file {path} is missing") from exc
        try:
            return SigningKey.from_pem(data)
        except KeyFormatError as exc:
            raise BadRequest(f"{path}: {exc}") from exc
