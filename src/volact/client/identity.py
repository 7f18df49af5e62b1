"""Who this machine is: its identity, the per-product fingerprint, new CMIDs and nonces.

The **fingerprint** (SPEC §1) is SHA-256 over the machine's identity, salted with the product id,
in hex. The identity is, in order:

1. the ``VOLACT_MACHINE_ID`` environment variable, when set and not empty (a testing and
   imaging aid: tests simulate several machines on one box, and an imaging tool can pin the
   identity it will later change on purpose);
2. ``/etc/machine-id`` (systemd), else ``/var/lib/dbus/machine-id`` (D-Bus);
3. the host name.

A cloned disk image keeps the CMID of the installed product but gets a new machine id on first
boot (``systemd-machine-id-setup``), so its fingerprint changes and the client makes a new CMID
by itself (``client_machine.check_fingerprint``).

The **CMID** is a random UUID (version 4) made at install, and the **nonce** of an activation
request is random too; both come from the random source the SDK was given (tests pass a seeded
one), never from module-level state.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from volact.core.errors import VolactError
from volact.core.protocol import MAX_MACHINE_NAME
from volact.fileio import MAX_SMALL_FILE_BYTES, read_bytes

__all__ = [
    "MACHINE_ID_ENV",
    "MACHINE_ID_FILES",
    "NONCE_SIZE",
    "RandomSource",
    "fingerprint",
    "machine_identity",
    "machine_name",
    "new_cmid",
    "new_nonce",
]

MACHINE_ID_ENV = "VOLACT_MACHINE_ID"
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
NONCE_SIZE = 24  # bytes; the protocol accepts 16–64
_FINGERPRINT_DOMAIN = b"volact fingerprint v1\x00"
_MAX_IDENTITY = 4096


class RandomSource(Protocol):
    """What the SDK needs of a random source (``random.SystemRandom`` and ``random.Random``)."""

    def randbytes(self, n: int) -> bytes: ...

    def randint(self, a: int, b: int) -> int: ...


def machine_identity(
    environ: Mapping[str, str] | None = None,
    files: tuple[Path, ...] = MACHINE_ID_FILES,
) -> str:
    """The machine's identity text (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    override = env.get(MACHINE_ID_ENV, "").strip()
    if override:
        return override[:_MAX_IDENTITY]
    for path in files:
        try:
            data = read_bytes(path, what="machine id file", limit=MAX_SMALL_FILE_BYTES)
        except VolactError:
            continue
        text = data.decode("ascii", errors="replace").strip()
        if text:
            return text[:_MAX_IDENTITY]
    return "hostname:" + socket.gethostname()


def fingerprint(product: str, identity: str) -> str:
    """The machine's fingerprint for ``product``: 64 lowercase hex digits."""
    digest = hashlib.sha256(
        _FINGERPRINT_DOMAIN + product.encode("utf-8") + b"\x00" + identity.encode("utf-8")
    )
    return digest.hexdigest()


def new_cmid(random: RandomSource) -> str:
    """A fresh client machine id: a version 4 UUID from ``random``."""
    return str(uuid.UUID(bytes=random.randbytes(16), version=4))


def new_nonce(random: RandomSource) -> str:
    """A fresh request nonce, unpadded base64url of :data:`NONCE_SIZE` random bytes."""
    return base64.urlsafe_b64encode(random.randbytes(NONCE_SIZE)).decode("ascii").rstrip("=")


def machine_name() -> str:
    """The host name sent in activation requests (for the host admin's client list)."""
    return (socket.gethostname() or "unknown")[:MAX_MACHINE_NAME]
