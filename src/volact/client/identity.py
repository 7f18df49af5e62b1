"""Who this machine is: its identity, the per-product fingerprint, new CMIDs and nonces.

The **fingerprint** (SPEC §1) is SHA-256 over the machine's identity, salted with the product id,
in hex. The identity comes from the operating system, never from the environment:

* Linux and other Unix systems: ``/etc/machine-id`` (systemd; not the ``uninitialized`` of an
  image before its first boot), else ``/var/lib/dbus/machine-id``
  (D-Bus);
* Windows: ``HKLM\\SOFTWARE\\Microsoft\\Cryptography`` value ``MachineGuid`` (read from the
  64-bit view of the registry, also by a 32-bit Python);
* macOS: the ``IOPlatformUUID`` that ``ioreg -rd1 -c IOPlatformExpertDevice`` prints;
* only when the system has none of these: the host name (so renaming such a machine makes it
  a new machine).

An app can choose another **identity source** for containers and VMs, where the OS's identity
belongs to an image (for example a cloud instance id or a Kubernetes cluster uid): it passes
``machine_id=`` to :class:`~volact.client.License`, either the identity text itself or a
function that returns it (:func:`file_source` reads one from a file). That argument is the only
override: the SDK and ``volact client`` read no environment variable for it, so a copied state
directory cannot be made to pass for its source machine by setting one.

A cloned disk image keeps the CMID of the installed product but gets a new machine id on first
boot (``systemd-machine-id-setup``, Sysprep), so its fingerprint changes and the client makes a
new CMID by itself (``client_machine.check_fingerprint``).

The **CMID** is a random UUID (version 4) made at install, and the **nonce** of an activation
request is random too; both come from the random source the SDK was given (tests pass a seeded
one), never from module-level state.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from volact.core.errors import ConfigurationError, VolactError
from volact.fileio import MAX_SMALL_FILE_BYTES, read_bytes

__all__ = [
    "IOREG_COMMAND",
    "MACHINE_ID_FILES",
    "NONCE_SIZE",
    "WINDOWS_KEY",
    "IdentitySource",
    "RandomSource",
    "file_source",
    "fingerprint",
    "ioreg_identity",
    "linux_identity",
    "machine_identity",
    "machine_name",
    "new_cmid",
    "new_nonce",
    "parse_ioreg",
    "resolve_identity",
    "windows_identity",
]

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
WINDOWS_KEY = r"SOFTWARE\Microsoft\Cryptography"
IOREG_COMMAND = ("/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice")
IOREG_TIMEOUT = 10.0
NONCE_SIZE = 24  # bytes; the protocol accepts 16–64
_FINGERPRINT_DOMAIN = b"volact fingerprint v1\x00"
_MAX_IDENTITY = 4096
_NOT_BOOTED = "uninitialized"  # machine-id(5): an image whose first boot has not run yet
_IOREG_UUID = r'"IOPlatformUUID"\s*=\s*"([^"]+)"'  # compiled on first use (macOS only)

IdentitySource = Callable[[], str]
"""A function that returns this machine's identity text (an app's own identity source)."""


class RandomSource(Protocol):
    """What the SDK needs of a random source (``random.SystemRandom`` and ``random.Random``)."""

    def randbytes(self, n: int) -> bytes: ...

    def randint(self, a: int, b: int) -> int: ...


def _clean(text: str | None) -> str | None:
    text = (text or "").strip()
    return text[:_MAX_IDENTITY] if text else None


def linux_identity(files: tuple[Path, ...] = MACHINE_ID_FILES) -> str | None:
    """The first non-empty machine id file of ``files``, or None."""
    for path in files:
        try:
            data = read_bytes(path, what="machine id file", limit=MAX_SMALL_FILE_BYTES)
        except VolactError:
            continue
        found = _clean(data.decode("ascii", errors="replace"))
        if found and found != _NOT_BOOTED:
            return found
    return None


def windows_identity(registry: Any = None) -> str | None:
    """``MachineGuid`` from the registry (``registry``: the ``winreg`` module), or None."""
    if registry is None:
        try:
            import winreg as registry  # type: ignore[no-redef,unused-ignore]  # Windows only
        except ImportError:
            return None
    access = registry.KEY_READ | getattr(registry, "KEY_WOW64_64KEY", 0)
    try:
        with registry.OpenKey(registry.HKEY_LOCAL_MACHINE, WINDOWS_KEY, 0, access) as key:
            value, kind = registry.QueryValueEx(key, "MachineGuid")
    except OSError:
        return None
    if kind != registry.REG_SZ or not isinstance(value, str):
        return None
    return _clean(value)


def parse_ioreg(output: str) -> str | None:
    """The ``IOPlatformUUID`` in the output of ``ioreg -rd1 -c IOPlatformExpertDevice``."""
    match = re.search(_IOREG_UUID, output)
    return _clean(match.group(1)) if match else None


def ioreg_identity(command: tuple[str, ...] = IOREG_COMMAND) -> str | None:
    """macOS: the platform UUID from ``ioreg``, or None when it cannot be run or read."""
    import subprocess  # only on macOS: the other systems never start a process for this

    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=IOREG_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_ioreg(done.stdout) if done.returncode == 0 else None


_MACOS_CACHE: dict[str, str | None] = {}


def machine_identity(platform: str | None = None) -> str:
    """This machine's identity text, from the operating system (module docstring)."""
    system = sys.platform if platform is None else platform
    found: str | None
    if system == "win32":
        found = windows_identity()
    elif system == "darwin":
        if "uuid" not in _MACOS_CACHE:  # ioreg is a process: once per process is enough
            _MACOS_CACHE["uuid"] = ioreg_identity()
        found = _MACOS_CACHE["uuid"]
    else:
        found = linux_identity()
    if found:
        return found
    import socket

    return "hostname:" + socket.gethostname()


def file_source(path: str | Path) -> IdentitySource:
    """An identity source that reads the identity from ``path`` (for example a file the
    orchestrator mounts with the cluster's or the instance's id)."""
    where = Path(path)

    def read() -> str:
        try:
            data = read_bytes(where, what="machine identity file", limit=MAX_SMALL_FILE_BYTES)
        except VolactError as exc:
            raise ConfigurationError(
                f"cannot read the machine identity from {where}: {exc.message}",
                {"path": str(where)},
            ) from exc
        found = _clean(data.decode("utf-8", errors="replace"))
        if found is None:
            raise ConfigurationError(f"the machine identity file {where} is empty")
        return found

    return read


def resolve_identity(machine_id: str | IdentitySource | None) -> str:
    """The identity an app chose (text, or a source to call), else the OS's."""
    if machine_id is None:
        return machine_identity()
    value = machine_id() if callable(machine_id) else machine_id
    found = _clean(value) if isinstance(value, str) else None
    if found is None:
        raise ConfigurationError("the machine identity the app gave is empty or not text")
    return found


def fingerprint(product: str, identity: str) -> str:
    """The machine's fingerprint for ``product``: 64 lowercase hex digits."""
    digest = hashlib.sha256(
        _FINGERPRINT_DOMAIN + product.encode("utf-8") + b"\x00" + identity.encode("utf-8")
    )
    return digest.hexdigest()


def new_cmid(random: RandomSource) -> str:
    """A fresh client machine id: a version 4 UUID (RFC 9562) from ``random``."""
    value = bytearray(random.randbytes(16))
    value[6] = (value[6] & 0x0F) | 0x40  # version 4
    value[8] = (value[8] & 0x3F) | 0x80  # the RFC's variant
    text = value.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_nonce(random: RandomSource) -> str:
    """A fresh request nonce, unpadded base64url of :data:`NONCE_SIZE` random bytes."""
    return base64.urlsafe_b64encode(random.randbytes(NONCE_SIZE)).decode("ascii").rstrip("=")


def machine_name() -> str:
    """The host name sent in activation requests (for the host admin's client list)."""
    import socket

    from volact.core.protocol import MAX_MACHINE_NAME  # the request's rule (only activating)

    return (socket.gethostname() or "unknown")[:MAX_MACHINE_NAME]
