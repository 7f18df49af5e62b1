"""The client's files in its state directory (``--dir`` / ``VOLACT_STATE_DIR``).

``<product>.license.json`` — one per installed product (SPEC §9), written atomically (temp file,
fsync, rename, directory fsync)::

    {
      "format": "volact-client-state", "v": 1,
      "descriptor": "v4.public.…",        # the product descriptor's token (for the CLI)
      "record": {…},                      # client_record.ClientRecord.to_dict()
      "settings": {                       # this product's discovery overrides; null = inherit
        "manual_host": null, "host_caching": null, "domains": null, "dns_server": null
      },
      "cached_host": "10.1.2.3:7688",     # the last host that answered (host caching)
      "activated_by": "10.1.2.3:7688",    # the host that gave the activation held
      "last_host": "10.1.2.3:7688",       # the host reached by the last attempt
      "pending_offline": null,            # an offline MAK request waiting for its response
      "trusted_time": 1800000000          # the second copy of record.trusted_time (see below)
    }

The trusted time (the latest time the client trusts; a clock earlier than it is a clock set
back) is kept twice, in the record and at the top of the file, and read as the later of the
two: lowering it takes editing both, and below the held ticket's signed issued-at less 4
hours no edit lowers it (:func:`volact.core.client_machine.trusted_time`). A file without the
top-level copy (written by an earlier volact) is read with the record's alone.

``client-settings.json`` — the machine-wide discovery settings that every product uses unless
its own file overrides them (``volact client set-host`` without ``--product``)::

    {"format": "volact-client-settings", "v": 1, "manual_host": null,
     "host_caching": true, "domains": [], "dns_server": null}

``.lock`` — an empty file that writers lock (``flock`` on Linux and macOS, ``msvcrt.locking`` on
Windows) around each read-modify-write, so the renewal service, the CLI and the apps of every
user of the machine never lose each other's updates. Readers do not lock: an
atomic rename always leaves a whole file.

A product file holding a MAK is written with mode 0600 (the MAK is a secret); a GVLK file is
0644, so an app running as any user can read the status the system's renewal service keeps.
Everything read from these files is checked like any untrusted input; a damaged file raises
``bad_request`` naming it, and nothing else is changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from volact.client import next_steps
from volact.core import keys, validate
from volact.core.client_record import ClientRecord
from volact.core.errors import BadRequest, NotFound, StorageError, UnsupportedVersion, VolactError
from volact.fileio import read_bytes, write_bytes_atomic

__all__ = [
    "LOCK_FILE",
    "PRODUCT_SUFFIX",
    "SETTINGS_FILE",
    "MachineSettings",
    "PendingRequest",
    "ProductSettings",
    "ProductState",
    "StateDir",
]

STATE_FORMAT = "volact-client-state"
SETTINGS_FORMAT = "volact-client-settings"
STATE_VERSION = 1
PRODUCT_SUFFIX = ".license.json"
SETTINGS_FILE = "client-settings.json"
LOCK_FILE = ".lock"
LOCK_MODE = 0o660  # the owner and the folder's group (less the umask)
MAX_STATE_BYTES = 256 * 1024
MAX_DOMAINS = 16
_ADDRESS_LIMIT = 300
_STATE_FIELDS = frozenset(
    {
        "format",
        "v",
        "descriptor",
        "record",
        "settings",
        "cached_host",
        "activated_by",
        "last_host",
        "pending_offline",
        "trusted_time",
    }
)
_SETTING_FIELDS = frozenset({"manual_host", "host_caching", "domains", "dns_server"})


@dataclass(frozen=True)
class MachineSettings:
    """The machine-wide discovery settings (``client-settings.json``)."""

    manual_host: str | None = None
    host_caching: bool = True
    domains: tuple[str, ...] = ()
    dns_server: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "manual_host": self.manual_host,
            "host_caching": self.host_caching,
            "domains": list(self.domains),
            "dns_server": self.dns_server,
        }


@dataclass(frozen=True)
class ProductSettings:
    """One product's overrides of the machine-wide settings; ``None`` = use the machine's."""

    manual_host: str | None = None
    host_caching: bool | None = None
    domains: tuple[str, ...] | None = None
    dns_server: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "manual_host": self.manual_host,
            "host_caching": self.host_caching,
            "domains": None if self.domains is None else list(self.domains),
            "dns_server": self.dns_server,
        }

    def over(self, machine: MachineSettings) -> MachineSettings:
        """The settings in effect for this product."""
        return MachineSettings(
            manual_host=self.manual_host if self.manual_host is not None else machine.manual_host,
            host_caching=machine.host_caching if self.host_caching is None else self.host_caching,
            domains=machine.domains if self.domains is None else self.domains,
            dns_server=self.dns_server if self.dns_server is not None else machine.dns_server,
        )


@dataclass(frozen=True)
class PendingRequest:
    """An offline MAK request written and not yet answered (its nonce must come back)."""

    nonce: str
    cmid: str
    fingerprint: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """Every field, under its own name (what the state file holds)."""
        return asdict(self)


@dataclass(frozen=True)
class ProductState:
    """Everything one ``<product>.license.json`` holds."""

    descriptor_token: str
    record: ClientRecord
    settings: ProductSettings = field(default_factory=ProductSettings)
    cached_host: str | None = None
    activated_by: str | None = None
    last_host: str | None = None
    pending_offline: PendingRequest | None = None

    @property
    def product(self) -> str:
        return self.record.product

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "v": STATE_VERSION,
            "descriptor": self.descriptor_token,
            "record": self.record.to_dict(),
            "settings": self.settings.to_dict(),
            "cached_host": self.cached_host,
            "activated_by": self.activated_by,
            "last_host": self.last_host,
            "pending_offline": None
            if self.pending_offline is None
            else self.pending_offline.to_dict(),
            "trusted_time": self.record.trusted_time,
        }


# --- reading untrusted JSON -----------------------------------------------------------------


def _check_format(data: dict[str, Any], expected: str, path: Path) -> None:
    if data.get("format") != expected:
        raise BadRequest(f"{path} is not a volact client file ({expected})")
    version = data.get("v")
    if version != STATE_VERSION:
        raise UnsupportedVersion(
            f"{path} has version {version!r}; this volact reads version {STATE_VERSION}",
            {"supported": [STATE_VERSION]},
        )


def _domains(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_DOMAINS:
        raise BadRequest(f"field {name!r} must be a list of at most {MAX_DOMAINS} domains")
    return tuple(validate.string({name: item}, name, max_len=253) for item in value)


def _settings_from(data: dict[str, Any]) -> ProductSettings:
    unknown = sorted(set(data) - _SETTING_FIELDS)
    if unknown:
        raise BadRequest(f"unknown settings field(s): {', '.join(unknown[:5])}")
    caching = data.get("host_caching")
    if caching is not None and not isinstance(caching, bool):
        raise BadRequest("field 'host_caching' must be true, false or null")
    domains = data.get("domains")
    return ProductSettings(
        manual_host=validate.optional_string(data, "manual_host", max_len=_ADDRESS_LIMIT),
        host_caching=caching,
        domains=None if domains is None else _domains(domains, "domains"),
        dns_server=validate.optional_string(data, "dns_server", max_len=_ADDRESS_LIMIT),
    )


def _pending_from(value: Any) -> PendingRequest | None:
    if value is None:
        return None
    data = validate.obj(value, "pending_offline")
    return PendingRequest(
        nonce=validate.string(data, "nonce", max_len=128),
        cmid=validate.uuid_text(data, "cmid"),
        fingerprint=validate.hex_text(data, "fingerprint"),
        created_at=validate.integer(data, "created_at", minimum=0),
    )


def parse_product_state(raw: Any, path: Path) -> ProductState:
    """A product state from the parsed JSON of ``path`` (raises ``BadRequest``)."""
    try:
        data = validate.obj(raw, "client state")
        _check_format(data, STATE_FORMAT, path)
        unknown = sorted(set(data) - _STATE_FIELDS)
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(unknown[:5])}")
        record = ClientRecord.from_dict(data.get("record"))
        copy = validate.optional_integer(data, "trusted_time", minimum=0)
        if copy is not None and copy > record.trusted_time:
            record = replace(record, trusted_time=copy)  # one edited copy lowers nothing
        state = ProductState(
            descriptor_token=validate.string(data, "descriptor", max_len=64 * 1024),
            record=record,
            settings=_settings_from(validate.obj(data.get("settings"), "settings")),
            cached_host=validate.optional_string(data, "cached_host", max_len=_ADDRESS_LIMIT),
            activated_by=validate.optional_string(data, "activated_by", max_len=_ADDRESS_LIMIT),
            last_host=validate.optional_string(data, "last_host", max_len=_ADDRESS_LIMIT),
            pending_offline=_pending_from(data.get("pending_offline")),
        )
    except VolactError as error:
        if error.code != "bad_request":
            raise
        raise BadRequest(
            f"the client state file {path} is damaged: {error.message}",
            {"path": str(path)},
            next_step=next_steps.REINSTALL_KEY,
        ) from error
    return state


def parse_machine_settings(raw: Any, path: Path) -> MachineSettings:
    try:
        data = validate.obj(raw, "client settings")
        _check_format(data, SETTINGS_FORMAT, path)
        body = {key: value for key, value in data.items() if key not in ("format", "v")}
        settings = _settings_from(body)
    except VolactError as error:
        if error.code != "bad_request":
            raise
        raise BadRequest(
            f"the client settings file {path} is damaged: {error.message}", {"path": str(path)}
        ) from error
    return MachineSettings(
        manual_host=settings.manual_host,
        host_caching=True if settings.host_caching is None else settings.host_caching,
        domains=settings.domains or (),
        dns_server=settings.dns_server,
    )


# --- the directory ----------------------------------------------------------------------------


class StateDir:
    """Reads and writes the files of one client state directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        # The last parse of each product file, by its exact bytes: parsing is a pure function
        # of the bytes, so a file read again unchanged is not parsed again. (What it holds,
        # such as the activation's signatures, is still verified on every status.)
        self._parsed: dict[str, tuple[bytes, ProductState]] = {}

    def product_path(self, product: str) -> Path:
        return self.directory / f"{validate.check_identifier(product, 'product')}{PRODUCT_SUFFIX}"

    @property
    def settings_path(self) -> Path:
        return self.directory / SETTINGS_FILE

    def products(self) -> list[str]:
        """The ids of the installed products, sorted."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(
                f"cannot list {self.directory}: {exc.strerror or exc}",
                {"path": str(self.directory)},
            ) from exc
        found = []
        for name in names:
            if name.endswith(PRODUCT_SUFFIX) and not name.startswith("."):
                product = name[: -len(PRODUCT_SUFFIX)]
                with contextlib.suppress(BadRequest):
                    found.append(validate.check_identifier(product, "product"))
        return sorted(found)

    def _read_bytes(self, path: Path) -> bytes | None:
        try:
            return read_bytes(path, what="client state file", limit=MAX_STATE_BYTES)
        except NotFound:
            return None

    def _read(self, path: Path) -> Any | None:
        data = self._read_bytes(path)
        if data is None:
            return None
        return self._decode(data, path)

    @staticmethod
    def _decode(data: bytes, path: Path) -> Any:
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise BadRequest(
                f"the client state file {path} is damaged (not JSON)",
                {"path": str(path)},
                next_step=next_steps.REINSTALL_KEY,
            ) from exc

    def read_product(self, product: str) -> ProductState | None:
        """The product's state, or None when it is not installed."""
        path = self.product_path(product)
        data = self._read_bytes(path)
        if data is None:
            return None
        cached = self._parsed.get(product)
        if cached is not None and cached[0] == data:
            return cached[1]
        state = parse_product_state(self._decode(data, path), path)
        if state.product != product:
            raise BadRequest(
                f"the client state file {path} holds product {state.product!r}, not {product!r}",
                {"path": str(path)},
            )
        self._parsed[product] = (data, state)
        return state

    def write_product(self, state: ProductState) -> None:
        mode = 0o600 if state.record.channel is keys.Channel.MAK else 0o644
        text = json.dumps(state.to_dict(), indent=2, sort_keys=False) + "\n"
        write_bytes_atomic(self.product_path(state.product), text.encode("utf-8"), mode=mode)

    def remove_product(self, product: str) -> bool:
        try:
            self.product_path(product).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot remove the state of {product}: {exc.strerror}") from exc
        return True

    def read_settings(self) -> MachineSettings:
        path = self.settings_path
        raw = self._read(path)
        return MachineSettings() if raw is None else parse_machine_settings(raw, path)

    def write_settings(self, settings: MachineSettings) -> None:
        body = {"format": SETTINGS_FORMAT, "v": STATE_VERSION, **settings.to_dict()}
        text = json.dumps(body, indent=2) + "\n"
        write_bytes_atomic(self.settings_path, text.encode("utf-8"), mode=0o644)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's write lock (other processes, users and threads wait).

        The lock is the operating system's own on ``.lock``: ``flock`` on Linux and macOS,
        ``msvcrt.locking`` on Windows; it is released when the process ends, however it ends.
        A user who may read but not write the directory gets a ``storage_error`` that names
        the ways out (docs/integration.md, "Machine-wide state").
        """
        path = self.directory / LOCK_FILE
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                # Not world-readable: whoever can open the lock can hold it, and every writer
                # (the renewal service too) would wait for ever. The folder's group may.
                fd = os.open(path, os.O_RDWR | os.O_CREAT, LOCK_MODE)
            except PermissionError:
                fd = os.open(path, os.O_RDONLY)  # made by another user: reading is enough to lock
        except OSError as exc:
            raise _not_writable(self.directory, exc) from exc
        try:
            _lock_file(fd)
            if not os.access(self.directory, os.W_OK):
                raise _not_writable(self.directory, PermissionError(13, "Permission denied"))
            yield
        finally:
            _unlock_file(fd)
            os.close(fd)  # closing the descriptor releases the lock too


def _not_writable(directory: Path, exc: OSError) -> StorageError:
    return StorageError(
        f"cannot write to the client state directory {directory}: {exc.strerror or exc}. "
        "It is shared by every user of the machine",
        {"path": str(directory)},
        next_step=next_steps.STATE_NOT_WRITABLE,
    )


_LOCK_POLL = 0.05  # seconds between tries of msvcrt's non-blocking lock


def _lock_file(fd: int) -> None:
    """Wait for an exclusive lock on the open file ``fd``."""
    try:
        import fcntl
    except ImportError:  # Windows
        pass
    else:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    import msvcrt  # Windows: byte-range locks; byte 0 stands for the whole file

    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
            return
        except OSError:
            time.sleep(_LOCK_POLL)


def _unlock_file(fd: int) -> None:
    """Release the lock of :func:`_lock_file` (closing ``fd`` releases it as well)."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined,unused-ignore]


def domains_tuple(domains: Sequence[str]) -> tuple[str, ...]:
    if len(domains) > MAX_DOMAINS:
        raise BadRequest(f"at most {MAX_DOMAINS} domains can be set")
    return tuple(dict.fromkeys(domains))
