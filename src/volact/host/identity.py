"""The host's files in its directory (``--dir`` / ``VOLACT_HOST_DIR``).

``host.json``
    ``{"host_id": …, "host_key": "<the host key text, XXXXX-…>", "vendor_url": … | null,
    "vendor_id": … | null, "vendor_root_keys": ["k4.public.…", …],
    "renewal_interval": … | null, "retry_interval": … | null, "port": 7688}``

    ``vendor_id`` and ``vendor_root_keys`` are filled in when the vendor certifies the host; the
    host checks its certificate against them at start.
``host-signing.pem``
    The host's Ed25519 private key (mode 0600, never printed).
``certificate.token``
    The host certificate (PASETO token text) once the vendor certified the host.
``host.db``
    The default SQLite store (``--db`` overrides it).
``vendor-requests.json``
    Offline certification requests waiting for the vendor's response (see docs/file-formats.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from volact.core.errors import (
    BadRequest,
    ConfigurationError,
    HostNotActivated,
    NotFound,
    StorageError,
)
from volact.crypto import KeyFormatError, SigningKey
from volact.fileio import (
    MAX_SMALL_FILE_BYTES,
    read_bytes,
    read_text,
    write_atomic,
    write_private,
)

HOST_FILE = "host.json"
SIGNING_KEY_FILE = "host-signing.pem"
CERTIFICATE_FILE = "certificate.token"
DATABASE_FILE = "host.db"


@dataclass
class HostSettings:
    host_id: str
    host_key: str
    vendor_url: str | None = None
    vendor_id: str | None = None
    vendor_root_keys: list[str] = field(default_factory=list)
    renewal_interval: int | None = None
    retry_interval: int | None = None
    port: int = 7688


class HostFiles:
    """Reads and writes the files of one host directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.directory / DATABASE_FILE}"

    def exists(self) -> bool:
        return (self.directory / HOST_FILE).exists()

    def settings(self) -> HostSettings:
        path = self.directory / HOST_FILE
        try:
            text = read_text(path, what="host settings file", limit=MAX_SMALL_FILE_BYTES)
        except NotFound as exc:
            raise NotFound(
                f"no host in {self.directory}; run `volact host init --key-file FILE` first "
                "(or `--key -` to read the host key from standard input)"
            ) from exc
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path} is not a host settings file")
        try:
            return HostSettings(**data)
        except TypeError as exc:
            raise ConfigurationError(f"{path} has unknown or missing fields") from exc

    def save_settings(self, settings: HostSettings) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # host.json holds the secret host key: private from the first byte.
        write_private(
            self.directory / HOST_FILE, json.dumps(asdict(settings), indent=2).encode("utf-8")
        )

    def signing_key(self) -> SigningKey:
        path = self.directory / SIGNING_KEY_FILE
        try:
            data = read_bytes(path, what="host signing key", limit=MAX_SMALL_FILE_BYTES)
        except NotFound as exc:
            raise NotFound(
                f"no host signing key in {self.directory}; run `volact host init`"
            ) from exc
        try:
            return SigningKey.from_pem(data)
        except KeyFormatError as exc:
            raise BadRequest(f"{path}: {exc}") from exc

    def save_signing_key(self, key: SigningKey) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_private(self.directory / SIGNING_KEY_FILE, key.to_pem())

    def certificate_token(self) -> str:
        path = self.directory / CERTIFICATE_FILE
        try:
            return read_text(path, what="host certificate", limit=MAX_SMALL_FILE_BYTES).strip()
        except NotFound as exc:
            raise HostNotActivated(
                "this host is not certified yet; run `volact host activate`"
            ) from exc

    def save_certificate_token(self, token: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / CERTIFICATE_FILE, token + "\n")


__all__ = ["HostFiles", "HostSettings"]
